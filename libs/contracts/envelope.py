"""The event envelope and the registry of event payloads.

Routing key = event type = `<service>.<entity>.<what-happened>.v<N>`. A payload change that
breaks a consumer is a new type (a new version), never an edit of an existing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

EVENT_TYPE_PATTERN = r"^[a-z_]+\.[a-z_]+\.[a-z_]+\.v[0-9]+$"


class Contract(BaseModel):
    """Base of every contract model: frozen, tolerant of fields added later."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Input(Contract):
    """A contract that carries what a shopper typed: text with a NUL character is refused
    here, the same in both modes (PostgreSQL cannot store it, SQLite would)."""

    @model_validator(mode="after")
    def _no_nul_characters(self) -> Input:
        for name, value in self.__dict__.items():
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name}: NUL characters are not allowed")
        return self


def example(instance: dict[str, Any]) -> ConfigDict:
    """A contract's config carrying its one example instance (shown in its JSON Schema)."""
    return Contract.model_config | {"json_schema_extra": {"examples": [instance]}}


class Event(Contract):
    """Base of every event payload; `event_type` is set by `@event`."""

    event_type: ClassVar[str]


E = TypeVar("E", bound=type[Event])

EVENTS: dict[str, type[Event]] = {}


def event(event_type: str) -> Callable[[E], E]:
    """Register a payload class under its versioned event type."""

    def register(cls: E) -> E:
        if event_type in EVENTS:
            raise ValueError(f"event type {event_type} registered twice")
        cls.event_type = event_type
        EVENTS[event_type] = cls
        return cls

    return register


class UnknownEventType(LookupError):
    pass


class Envelope(Contract):
    """What travels on the bus: metadata plus the payload as plain JSON."""

    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Unique per event, the same on every delivery."
    )
    type: str = Field(pattern=EVENT_TYPE_PATTERN, description="The event type = routing key.")
    occurred_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the change committed (UTC)."
    )
    producer: str = Field(description="The service that published the event.")
    correlation_id: str | None = Field(
        None, description="The id of the request that caused it (also in the logs)."
    )
    payload: dict[str, Any] = Field(description="The event's payload; its model is by `type`.")
    traceparent: str | None = Field(
        None,
        max_length=256,
        description="W3C trace context of the transaction that wrote the event, if traced.",
    )
    tracestate: str | None = Field(None, max_length=512, description="W3C trace state.")

    @classmethod
    def wrap(
        cls,
        payload: Event,
        *,
        producer: str,
        correlation_id: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Envelope:
        """Put a payload in a new envelope."""
        return cls(
            type=payload.event_type,
            producer=producer,
            correlation_id=correlation_id,
            payload=payload.model_dump(mode="json"),
            traceparent=traceparent,
            tracestate=tracestate,
        )

    def parse_payload(self) -> Event:
        """The payload as its registered model."""
        try:
            model = EVENTS[self.type]
        except KeyError:
            raise UnknownEventType(self.type) from None
        return model.model_validate(self.payload)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        return cls.model_validate_json(body)
