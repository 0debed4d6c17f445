"""Example envelopes of every event, built from each payload's example instance.

The AsyncAPI document and docs/events.md show them; consumers can feed them to their tests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from libs.contracts import events as _events  # noqa: F401  (registers every payload)
from libs.contracts.envelope import EVENTS, Envelope, Event
from libs.contracts.topology import producer_of

_EXAMPLE_IDS = uuid.UUID("6f0e3d2c-1b0a-4f9e-8d7c-6b5a49382716")


def example_payload(model: type[Event]) -> Event:
    """The payload's own example instance."""
    return model.model_validate(model.model_json_schema()["examples"][0])


def example_envelope(model: type[Event]) -> Envelope:
    """A complete envelope around the example payload, with stable ids and times."""
    return Envelope(
        event_id=uuid.uuid5(_EXAMPLE_IDS, model.event_type),
        type=model.event_type,
        occurred_at=datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC),
        producer=producer_of(model.event_type),
        correlation_id="7d1c9e0f4b2a4c8e9f0a1b2c3d4e5f60",
        payload=example_payload(model).model_dump(mode="json"),
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )


def all_examples() -> dict[str, Envelope]:
    """Every registered event type's example envelope, by type."""
    return {event_type: example_envelope(model) for event_type, model in sorted(EVENTS.items())}
