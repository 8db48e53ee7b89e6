"""The Kubernetes manifests in deploy/kubernetes/, checked offline.

Built-in kinds are validated against the Kubernetes OpenAPI schemas that `kubernetes-validate`
ships (strict: an unknown or misspelt field fails), for the oldest and the newest version it
knows. KEDA's ScaledObject is a custom resource those schemas lack: it is validated against the
subset of its CRD kept in deploy/kubernetes/schemas/. Then what no schema can see: references
between the objects, settings that jobrelay really reads, commands the CLI really has, and the
queue-depth metric that the API really exports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from jobrelay.config import Settings
from tests.conftest import Stack
from tests.support.processes import base_env, run_cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
SCALED_OBJECT_SCHEMA = DEPLOY / "schemas" / "scaledobject-keda-v1alpha1.json"
NAMESPACE = "jobrelay"
VERSIONS = [all_versions()[0], all_versions()[-1]]
DIRECT_URL = "DATABASE_URL_DIRECT"  # the migration Job's own: PostgreSQL, never PgBouncer


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                found.append((path.name, document))
    return found


DOCUMENTS = _documents()


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in DOCUMENTS if d["kind"] == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in _of_kind(kind) if d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        for document in _of_kind(kind):
            for container in document["spec"]["template"]["spec"]["containers"]:
                yield document["metadata"]["name"], container


def _id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}:{item[1]['kind']}/{item[1]['metadata']['name']}"


def test_the_manifests_hold_every_part() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for _, d in DOCUMENTS)
    assert kinds == [
        ("ConfigMap", "jobrelay-config"),
        ("Deployment", "jobrelay-api"),
        ("Deployment", "jobrelay-generator"),
        ("Deployment", "jobrelay-worker-default"),
        ("Deployment", "jobrelay-worker-gpu"),
        ("HorizontalPodAutoscaler", "jobrelay-api"),
        ("Job", "jobrelay-migrate"),
        ("Namespace", "jobrelay"),
        ("PodDisruptionBudget", "jobrelay-api"),
        ("ScaledObject", "jobrelay-worker-default"),
        ("ScaledObject", "jobrelay-worker-gpu"),
        ("Secret", "jobrelay-secrets"),
        ("Service", "jobrelay-api"),
        ("Service", "jobrelay-generator"),
    ]
    for _, document in DOCUMENTS:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == NAMESPACE, document["metadata"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("item", [i for i in DOCUMENTS if i[1]["kind"] != "ScaledObject"], ids=_id)
def test_valid_against_the_kubernetes_schemas(
    item: tuple[str, dict[str, Any]], version: str
) -> None:
    _, document = item
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("item", [i for i in DOCUMENTS if i[1]["kind"] == "ScaledObject"], ids=_id)
def test_scaled_objects_valid_against_the_keda_schema(item: tuple[str, dict[str, Any]]) -> None:
    schema = json.loads(SCALED_OBJECT_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(item[1])


def test_the_keda_schema_catches_mistakes() -> None:
    schema = json.loads(SCALED_OBJECT_SCHEMA.read_text())
    good = _of_kind("ScaledObject")[0]
    misspelt = json.loads(json.dumps(good))
    misspelt["spec"]["maxReplicas"] = misspelt["spec"].pop("maxReplicaCount")
    no_query = json.loads(json.dumps(good))
    del no_query["spec"]["triggers"][0]["metadata"]["query"]
    for bad in (misspelt, no_query):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_selectors_match_their_pods() -> None:
    pods = {}
    for document in _of_kind("Deployment"):
        labels = document["spec"]["template"]["metadata"]["labels"]
        selector = document["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), document["metadata"]["name"]
        pods[document["metadata"]["name"]] = labels
    for service in _of_kind("Service"):
        name = service["metadata"]["name"]
        selected = [
            d for d, labels in pods.items() if service["spec"]["selector"].items() <= labels.items()
        ]
        assert selected == [name], (name, selected)
        container = _named("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    budget = _named("PodDisruptionBudget", "jobrelay-api")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pods["jobrelay-api"].items()


def test_autoscalers_target_existing_deployments() -> None:
    hpa = _named("HorizontalPodAutoscaler", "jobrelay-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "jobrelay-api",
    }
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    api = _named("Deployment", "jobrelay-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["resources"]["requests"]["cpu"], "CPU utilisation needs a CPU request"
    for scaled in _of_kind("ScaledObject"):
        target = _named("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        assert target["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"


def test_workers_scale_on_their_own_queue() -> None:
    for scaled in _of_kind("ScaledObject"):
        deployment = _named("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        queue = deployment["metadata"]["labels"]["jobrelay.io/queue"]
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[:2] == ["jobrelay", "worker"]
        assert command[command.index("--queue") + 1] == queue
        [trigger] = scaled["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        assert re.fullmatch(
            rf'max\(jobrelay_queue_depth\{{queue="{queue}"\}}\)', trigger["metadata"]["query"]
        ), trigger["metadata"]["query"]


def test_migrations_connect_directly() -> None:
    container = _named("Job", "jobrelay-migrate")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["JOBRELAY_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "jobrelay-secrets",
        "key": DIRECT_URL,
    }
    assert env["JOBRELAY_DB_PGBOUNCER"]["value"] == "false"


def test_api_readiness_and_liveness() -> None:
    api = _named("Deployment", "jobrelay-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_settings_are_ones_jobrelay_reads() -> None:
    known = {f"JOBRELAY_{name.upper()}" for name in Settings.model_fields}
    config = _named("ConfigMap", "jobrelay-config")["data"]
    secret = _named("Secret", "jobrelay-secrets")["stringData"]
    assert set(config) <= known, set(config) - known
    assert set(secret) - {DIRECT_URL} <= known, set(secret) - known
    assert {"JOBRELAY_DATABASE_URL", "JOBRELAY_REDIS_URL", DIRECT_URL} <= set(secret)
    values = {k: v for k, v in {**config, **secret}.items() if k != DIRECT_URL}
    Settings(_env_file=None, **{k.removeprefix("JOBRELAY_").lower(): v for k, v in values.items()})  # type: ignore[arg-type]
    for owner, container in _containers():
        refs = {
            ("ConfigMap", s["configMapRef"]["name"])
            if "configMapRef" in s
            else ("Secret", s["secretRef"]["name"])
            for s in container["envFrom"]
        }
        assert refs == {("ConfigMap", "jobrelay-config"), ("Secret", "jobrelay-secrets")}, owner


@pytest.mark.parametrize("command", sorted({tuple(c["command"]) for _, c in _containers()}))
def test_commands_exist(command: tuple[str, ...]) -> None:
    """The whole command line parses (an unknown option fails before `--help` is honoured)."""
    assert command[0] == "jobrelay"
    result = run_cli([*command[1:], "--help"], base_env({}), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_the_queue_depth_metric_is_exported(stack: Stack) -> None:
    """The metric and label the ScaledObjects query are on /metrics (the default queue always
    has a sample; another queue has one once a loaded kind uses it)."""
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        text = (await http.get("/metrics")).text
    for scaled in _of_kind("ScaledObject"):
        query = scaled["spec"]["triggers"][0]["metadata"]["query"]
        metric = query.split("(")[1].split("{")[0]
        assert re.search(rf"^# TYPE {metric} gauge$", text, re.M), metric
    assert re.search(r'^jobrelay_queue_depth\{queue="default"\} \d', text, re.M), text
