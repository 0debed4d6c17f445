"""The shipped deployments open no more database connections than docs/operations.md budgets."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("catalog", "cart", "orders", "payments")


def compose_pool() -> int:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    value = str(compose["x-store-env"]["STORE_DB_POOL_SIZE"])
    match = re.fullmatch(r"\$\{STORE_DB_POOL_SIZE:-(\d+)\}", value)
    assert match, value
    return int(match.group(1))


def kubernetes_pool_and_replicas() -> tuple[int, dict[str, int]]:
    base = ROOT / "deploy" / "kubernetes" / "base"
    config = next(
        document
        for document in yaml.safe_load_all((base / "config.yaml").read_text())
        if document and document.get("kind") == "ConfigMap"
    )
    replicas = {}
    for service in SERVICES:
        for document in yaml.safe_load_all((base / f"{service}.yaml").read_text()):
            if document and document.get("kind") == "HorizontalPodAutoscaler":
                replicas[service] = int(document["spec"]["maxReplicas"])
    return int(config["data"]["STORE_DB_POOL_SIZE"]), replicas


def test_compose_fits_two_stores_on_its_bundled_postgresql() -> None:
    # 100 connections, 3 reserved, 40 % for each of two stores.
    assert len(SERVICES) * compose_pool() <= 0.4 * (100 - 3)


def test_kubernetes_at_its_autoscaling_maximum_fits_the_documented_server() -> None:
    pool, replicas = kubernetes_pool_and_replicas()
    assert set(replicas) == set(SERVICES)
    total = sum(count * pool for count in replicas.values())
    documented = (ROOT / "docs" / "operations.md").read_text()
    row = re.search(r"\| Kubernetes .*?\| (\d+) \| (\d+) at a share of 0\.8 \|", documented)
    assert row, "docs/operations.md lost the Kubernetes row of the connection budget"
    assert int(row.group(1)) == total
    assert total <= 0.8 * (int(row.group(2)) - 3)
