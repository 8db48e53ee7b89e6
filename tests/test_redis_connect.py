"""`JOBRELAY_REDIS_URL` in both forms: one server, or Sentinels naming the primary.

The failover itself is tested with real Sentinels in tests/reliability/test_redis_sentinel_failover.py.
"""

from __future__ import annotations

import pytest
from redis.asyncio.sentinel import SentinelConnectionPool

from jobrelay import redis_connect
from jobrelay.config import Settings
from jobrelay.redis_connect import RedisAddress, parse_redis_url
from tests.support.processes import base_env, run_cli


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, redis_url=url)  # type: ignore[call-arg]


def test_a_plain_url_is_passed_through() -> None:
    assert parse_redis_url("redis://:pw@cache:6380/3") == RedisAddress(
        url="redis://:pw@cache:6380/3"
    )


def test_sentinel_url() -> None:
    address = parse_redis_url(
        "redis+sentinel://app:p%40ss@s1:26379,s2:26380,[::1]/jobrelay-primary/4"
    )
    assert address.sentinels == (("s1", 26379), ("s2", 26380), ("::1", 26379))
    assert address.master_name == "jobrelay-primary"
    assert address.db == 4
    assert (address.username, address.password) == ("app", "p@ss")


def test_sentinel_url_defaults() -> None:
    address = parse_redis_url("redis+sentinel://:secret@s1/mymaster")
    assert address.sentinels == (("s1", 26379),)
    assert (address.master_name, address.db) == ("mymaster", 0)
    assert (address.username, address.password) == (None, "secret")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel:///mymaster/0", "no Sentinel host"),
        ("redis+sentinel://s1:26379", "no master"),
        ("redis+sentinel://s1:26379//0", "no master"),
        ("redis+sentinel://s1:x/mymaster/0", "bad Sentinel port"),
        ("redis+sentinel://s1/mymaster/zero", "non-numeric db"),
    ],
)
def test_malformed_sentinel_urls_are_rejected(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_redis_url(url)


def test_clients_follow_the_sentinels() -> None:
    settings = _settings("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/primary/2")
    pool = redis_connect.connection_pool(settings)
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "primary"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "pw"
    arq = redis_connect.arq_settings(settings)
    assert arq.sentinel and arq.sentinel_master == "primary"
    assert arq.host == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    assert (arq.database, arq.password) == (2, "pw")


def test_a_malformed_url_is_a_usage_error_at_start() -> None:
    env = base_env(
        {
            "JOBRELAY_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
            "JOBRELAY_REDIS_URL": "redis+sentinel://127.0.0.1:26379/",
        }
    )
    result = run_cli(["worker"], env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "JOBRELAY_REDIS_URL" in result.stderr and "no master" in result.stderr
    assert "Traceback" not in result.stderr
