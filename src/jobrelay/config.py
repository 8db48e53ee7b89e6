"""Settings: every tunable is a `JOBRELAY_*` environment variable (or a line in `.env`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One place for configuration, shared by the API, the worker and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="JOBRELAY_", env_file=".env", extra="ignore", case_sensitive=False
    )

    # Connections. Empty means "embedded" for `jobrelay dev` and an error elsewhere.
    database_url: str = ""
    redis_url: str = ""
    # 20 connections kept open per process, none beyond: an overflow connection is closed as
    # soon as it is handed back, so load above the pool size opened and closed a PostgreSQL
    # connection every few requests (a backend fork each); waiting for a pooled one is cheaper.
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # Connections per API process for the one-row reads of the request path (a job's status),
    # apart from the pool above (jobrelay.db.reads); opened on first use.
    db_read_pool_size: int = Field(default=8, ge=1)
    # Behind PgBouncer in transaction mode: no startup parameters but application_name, no
    # prepared statement kept past its transaction, no autocommit reads (see db/engine.py).
    db_pgbouncer: bool = False
    redis_timeout: float = Field(default=2.0, gt=0)

    # HTTP API.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    public_url: str = "http://127.0.0.1:8000"
    rate_limit_per_minute: int = Field(default=120, ge=1)
    max_running_per_user: int = Field(default=5, ge=1)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    max_wait_seconds: int = Field(default=60, ge=0, le=60)

    # Worker.
    worker_max_jobs: int = Field(default=200, ge=1)
    worker_poll_delay: float = Field(default=0.05, gt=0)
    worker_queue_read_limit: int = Field(default=1000, ge=1)
    lease_seconds: int = Field(default=30, ge=2)
    # The write buffer: a worker's claims, steps and endings wait at most this long (or until
    # this many wait) to share one transaction; a failed flush is retried for this long.
    write_buffer_ms: float = Field(default=4.0, ge=0, le=50)
    write_buffer_max: int = Field(default=1000, ge=1)
    write_retry_seconds: float = Field(default=30.0, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    retry_base_delay: float = Field(default=1.0, ge=0)
    retry_max_delay: float = Field(default=60.0, ge=0)
    job_deadline_seconds: int = Field(default=900, ge=1)
    reconcile_interval_seconds: int = Field(default=15, ge=1)
    queue_name: str = "jobrelay:queue"

    # Prompt generation.
    llm_base_url: str = ""
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str = ""
    llm_timeout: float = Field(default=60.0, gt=0)
    llm_retries: int = Field(default=2, ge=0)
    offline_llm_delay: float = Field(default=1.0, ge=0)
    prompt_step_delay: float = Field(default=0.0, ge=0)
    prompt_token_cost: int = Field(default=700, ge=0)

    # Live output (`ctx.output`): characters of a running job's text kept in Redis for clients
    # that connect mid-run, and how long that copy outlives a worker that died.
    output_live_max_chars: int = Field(default=262_144, ge=1)
    output_live_ttl_seconds: int = Field(default=3600, ge=1)

    # Quiz generation through an external generator.
    generator_url: str = ""
    generator_secret: str = ""
    ai_worker_token: str = ""
    ai_worker_token_enabled: bool = True
    generator_timeout: float = Field(default=10.0, gt=0)
    generator_retries: int = Field(default=4, ge=0)
    quiz_deadline_seconds: int = Field(default=900, ge=1)
    # The reference generator (`jobrelay generator`): seconds from /generate to the result,
    # default behaviour directives (see jobrelay.generator.behaviour), callback retries.
    generator_delay: float = Field(default=3.0, ge=0)
    generator_behaviour: str = ""
    generator_callback_retries: int = Field(default=5, ge=0)

    # Ingestion.
    ingest_delay_per_100: float = Field(default=0.5, ge=0)

    # Outgoing webhooks.
    webhook_allow_private: bool = False
    webhook_timeout: float = Field(default=15.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_retry_base_delay: float = Field(default=1.0, ge=0)
    webhook_retry_max_delay: float = Field(default=600.0, ge=0)

    # Housekeeping.
    retention_days: int = Field(default=30, ge=1)
    pg_bin_dir: str = ""  # pg_dump/pg_restore for `jobrelay db backup`; empty: found by version

    # CLI.
    api_url: str = "http://127.0.0.1:8000"
    api_key: str = ""

    # Logging.
    log_level: str = "INFO"

    @field_validator("redis_url")
    @classmethod
    def _redis_url_parses(cls, value: str) -> str:
        """A malformed Sentinel address is a configuration error at start, not a 503 later."""
        from jobrelay.redis_connect import parse_redis_url  # imports redis/arq: only when set

        if value:
            parse_redis_url(value)
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the asyncpg driver, whatever form the user gave."""
        url = self.database_url
        for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL as plain libpq/asyncpg understand it."""
        return self.sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
