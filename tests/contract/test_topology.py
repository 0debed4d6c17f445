"""The broker topology: the committed definitions file is the one the code declares."""

from __future__ import annotations

import json
from pathlib import Path

from cli import rabbitdefs
from libs.contracts import events  # noqa: F401  (fills EVENTS)
from libs.contracts.envelope import EVENTS
from libs.contracts.topology import (
    CONSUMERS,
    DEFAULT_QUEUE_PREFIX,
    DEFAULT_RETRY_LADDER_MS,
    UNCLAIMED,
    queue_name,
)
from libs.runtime.rabbit import RabbitBus
from libs.runtime.settings import RuntimeSettings

DEFINITIONS = Path(__file__).parents[2] / "deploy" / "rabbitmq" / "definitions.json"


def test_the_definitions_file_is_generated_from_the_topology() -> None:
    assert DEFINITIONS.read_text() == rabbitdefs.render(), (
        "regenerate: python -m cli.rabbitdefs > deploy/rabbitmq/definitions.json"
    )


def test_the_definitions_declare_what_a_service_declares_with_the_default_settings() -> None:
    settings = RuntimeSettings()
    assert settings.queue_prefix == DEFAULT_QUEUE_PREFIX
    assert settings.consumer_retry_ladder_ms == DEFAULT_RETRY_LADDER_MS
    bus = RabbitBus("amqp://127.0.0.1:9/", exchange=settings.exchange, queue_prefix="store")
    declared = {spec.name: spec for spec in bus.topology()}
    definitions = json.loads(DEFINITIONS.read_text())
    queues = {q["name"]: q["arguments"] for q in definitions["queues"]}
    assert queues == {name: spec.arguments for name, spec in declared.items()}
    bindings = {(b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    assert bindings == {(n, t) for n, spec in declared.items() for t in spec.bindings}
    assert {b["source"] for b in definitions["bindings"]} == {settings.exchange}


def test_every_published_type_has_a_queue_so_mandatory_publishing_succeeds() -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    bound = {b["routing_key"] for b in definitions["bindings"]}
    assert bound == set(EVENTS)
    unclaimed = queue_name(DEFAULT_QUEUE_PREFIX, UNCLAIMED)
    claimed = {t for types in CONSUMERS.values() for t in types}
    assert {
        b["routing_key"] for b in definitions["bindings"] if b["destination"] == unclaimed
    } == set(EVENTS) - claimed


def test_each_consumer_queue_is_a_quorum_queue_that_dead_letters_to_its_dlq() -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    queues = {q["name"]: q["arguments"] for q in definitions["queues"]}
    for consumer in CONSUMERS:
        name = queue_name(DEFAULT_QUEUE_PREFIX, consumer)
        assert queues[name]["x-queue-type"] == "quorum"
        assert queues[name]["x-delivery-limit"] > 0
        assert queues[name]["x-dead-letter-routing-key"] == f"{name}.dlq"
        rungs = {q: a for q, a in queues.items() if q.startswith(f"{name}.retry.")}
        assert sorted(a["x-message-ttl"] for a in rungs.values()) == list(DEFAULT_RETRY_LADDER_MS)
        assert {a["x-dead-letter-routing-key"] for a in rungs.values()} == {name}
