"""The shipped deployments open no more database connections than docs/operations.md budgets."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("catalog", "cart", "orders", "payments", "notifications")


def _own_pool(env: dict[str, str], service: str, default: int) -> int:
    return int(env.get(f"{service.upper()}_DATABASE_POOL_SIZE", default))


def compose_pools() -> dict[str, int]:
    """Each service's pool in compose: its own `<SERVICE>_DATABASE_POOL_SIZE`, else the shared."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    value = str(compose["x-store-env"]["STORE_DB_POOL_SIZE"])
    match = re.fullmatch(r"\$\{STORE_DB_POOL_SIZE:-(\d+)\}", value)
    assert match, value
    return {
        service: _own_pool(
            {k: str(v) for k, v in compose["services"][service]["environment"].items()},
            service,
            int(match.group(1)),
        )
        for service in SERVICES
    }


def kubernetes_pools_and_replicas() -> tuple[dict[str, int], dict[str, int]]:
    base = ROOT / "deploy" / "kubernetes" / "base"
    config = next(
        document
        for document in yaml.safe_load_all((base / "config.yaml").read_text())
        if document and document.get("kind") == "ConfigMap"
    )
    shared = int(config["data"]["STORE_DB_POOL_SIZE"])
    replicas, pools = {}, {}
    for service in SERVICES:
        for document in yaml.safe_load_all((base / f"{service}.yaml").read_text()):
            if document and document.get("kind") == "HorizontalPodAutoscaler":
                replicas[service] = int(document["spec"]["maxReplicas"])
            if document and document.get("kind") == "Deployment":
                (container,) = document["spec"]["template"]["spec"]["containers"]
                env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
                pools[service] = _own_pool(env, service, shared)
    return pools, replicas


def test_compose_fits_two_stores_on_its_bundled_postgresql() -> None:
    # 100 connections, 3 reserved, 40 % for each of two stores.
    assert sum(compose_pools().values()) <= 0.4 * (100 - 3)


def test_kubernetes_at_its_autoscaling_maximum_fits_the_documented_server() -> None:
    pools, replicas = kubernetes_pools_and_replicas()
    assert set(replicas) == set(SERVICES)
    total = sum(count * pools[service] for service, count in replicas.items())
    documented = (ROOT / "docs" / "operations.md").read_text()
    row = re.search(r"\| Kubernetes .*?\| (\d+) \| (\d+) at a share of 0\.8 \|", documented)
    assert row, "docs/operations.md lost the Kubernetes row of the connection budget"
    assert int(row.group(1)) == total
    assert total <= 0.8 * (int(row.group(2)) - 3)
