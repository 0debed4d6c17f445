"""Contracts are data: their JSON Schemas are committed, and a change must be reviewed.

After an intended change, regenerate with `STORE_UPDATE_SCHEMAS=1 pytest tests/contract`.
A change that breaks consumers needs a new event version instead.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from libs.contracts.envelope import EVENTS, Contract
from libs.contracts.topology import CONSUMERS

SNAPSHOTS = Path(__file__).parent / "schemas"
MODULES = ("common", "events", "catalog", "cart", "orders", "payments", "store")


def contract_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {}
    for name in MODULES:
        module = importlib.import_module(f"libs.contracts.{name}")
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Contract)
                and value.__module__ == module.__name__
                and not getattr(value, "__pydantic_generic_metadata__", {}).get("parameters")
            ):
                models[f"{name}.{attr}"] = value
    return models


@pytest.mark.parametrize("name", sorted(contract_models()))
def test_schema_matches_the_committed_snapshot(name: str) -> None:
    schema = contract_models()[name].model_json_schema()
    path = SNAPSHOTS / f"{name}.json"
    rendered = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("STORE_UPDATE_SCHEMAS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"no snapshot for {name}: run with STORE_UPDATE_SCHEMAS=1"
    assert path.read_text() == rendered, f"{name} changed: review, then regenerate the snapshot"


def test_every_event_type_is_versioned_and_named_by_its_producer() -> None:
    producers = {"catalog", "cart", "orders", "payments", "identity"}
    for event_type in EVENTS:
        service, entity, fact, version = event_type.split(".")
        assert service in producers and entity and fact and version.startswith("v")


@pytest.mark.parametrize("service", sorted(CONSUMERS))
def test_each_service_subscribes_to_what_the_topology_says(service: str) -> None:
    handlers = importlib.import_module(f"services.{service}.handlers")
    subscribed = {model.event_type for model in handlers.HANDLERS}
    assert subscribed == set(CONSUMERS[service])
