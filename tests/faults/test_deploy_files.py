"""deploy/: the files parse and say what production relies on (no container engine here:
the image is not built, the manifests are not applied)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install pyyaml)")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def kubernetes_objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in documents(path):
            found[f"{doc['kind']}/{doc.get('metadata', {}).get('name', path.stem)}"] = doc
    return found


@pytest.mark.parametrize("path", sorted([*DEPLOY.glob("*.yaml"), *KUBERNETES.glob("*.yaml")]),
                         ids=lambda p: p.name)
def test_every_yaml_file_parses(path: Path) -> None:
    assert documents(path)


def test_the_image_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\w+))?", text, re.MULTILINE)
    assert len(stages) >= 2
    assert re.search(r"^COPY --from=build ", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert '"serve"' in text


def test_compose_runs_hindsight_after_a_healthy_postgresql_with_secrets_from_files() -> None:
    [compose] = documents(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert services["hindsight"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = services["hindsight"]["environment"]
    assert "HINDSIGHT_DATABASE_URL_FILE" in env
    assert "HINDSIGHT_DATABASE_URL" not in env  # never a password in the compose file
    assert set(services["hindsight"]["secrets"]) <= set(compose["secrets"])
    assert all(p.startswith("127.0.0.1:") for p in services["hindsight"]["ports"])


def test_the_deployment_has_replicas_probes_and_a_locked_down_pod() -> None:
    objects = kubernetes_objects()
    deployment = objects["Deployment/hindsight"]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_service_selects_the_deployment_and_secrets_referenced_exist() -> None:
    objects = kubernetes_objects()
    deployment, service = objects["Deployment/hindsight"], objects["Service/hindsight"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    secret = objects["Secret/hindsight"]
    keys = set(secret["stringData"])
    for name in ("Deployment/hindsight", "Job/hindsight-migrate"):
        pod = objects[name]["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "hindsight"
                    assert ref["key"] in keys
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert {i["key"] for i in volume["secret"]["items"]} <= keys


def test_the_kustomization_lists_every_manifest() -> None:
    [kustomization] = documents(KUBERNETES / "kustomization.yaml")
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_the_systemd_unit_serves_without_root_and_restarts_on_failure() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read(DEPLOY / "systemd" / "hindsight.service", encoding="utf-8")
    service = unit["Service"]
    assert " serve " in f" {service['ExecStart']} "
    assert service.get("DynamicUser") == "yes" or service.get("User") not in {None, "root"}
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


PROMETHEUS_RULES = DEPLOY / "prometheus" / "hindsight-rules.yaml"


def test_the_prometheus_rules_alert_on_a_held_read_horizon_with_exported_metrics() -> None:
    """docs/operations.md, "Metrics": a long transaction holding the readers' horizon
    pages someone (issue 12, item 4). Prometheus's rule-file format: ``groups`` of named
    rules, each alert with an ``expr``; every metric an expression reads must be one
    Hindsight exports, or the alert can never fire."""
    from hindsight.metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()}
    exported |= {f"{name}_total" for name in exported}
    [rules] = documents(PROMETHEUS_RULES)
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts
    for name, rule in alerts.items():
        assert rule["labels"]["severity"], name
        assert rule["annotations"]["summary"], name
        used = set(re.findall(r"\bhindsight_[a-z_]+", rule["expr"]))
        assert used, name
        assert used <= exported, (name, used - exported)
    horizon = [r for r in alerts.values() if "hindsight_read_horizon_age_seconds" in r["expr"]]
    assert horizon, "no alert on hindsight_read_horizon_age_seconds"
    assert "pg_stat_activity" in horizon[0]["annotations"]["description"]
