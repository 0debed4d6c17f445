"""The AsyncAPI 3.0 document of every event, generated from the contracts."""

from __future__ import annotations

from typing import Any

from libs.contracts import events as _events  # noqa: F401  (registers every payload)
from libs.contracts.envelope import EVENTS, Envelope
from libs.contracts.examples import example_envelope
from libs.contracts.topology import CONSUMERS, producer_of, queue_name


def asyncapi_document(
    *, exchange: str, queue_prefix: str, version: str = "0.1.0"
) -> dict[str, Any]:
    """Channels (one per event type on the topic exchange), messages and operations."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Envelope": _envelope_schema()}
    operations: dict[str, Any] = {}
    for event_type, model in sorted(EVENTS.items()):
        name = model.__name__
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(def_name, definition)
        schemas[name] = schema
        channel_id = event_type.replace(".", "_")
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name,
            "contentType": "application/json",
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "examples": [
                {
                    "name": f"{name}Example",
                    "summary": f"A {event_type} envelope.",
                    "payload": example_envelope(model).model_dump(mode="json"),
                }
            ],
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "payload": {"$ref": f"#/components/schemas/{name}"},
                        },
                    },
                ]
            },
        }
        channels[channel_id] = {
            "address": event_type,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange, "type": "topic", "durable": True, "vhost": "/"},
                }
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Published by {producer_of(event_type)}.",
        }
        for consumer, types in CONSUMERS.items():
            if event_type in types:
                operations[f"{consumer}_receives_{channel_id}"] = {
                    "action": "receive",
                    "channel": {"$ref": f"#/channels/{channel_id}"},
                    "summary": f"Consumed by {consumer} from queue "
                    f"{queue_name(queue_prefix, consumer)}.",
                    "bindings": {"amqp": {"ack": True}},
                }
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "Store events",
            "version": version,
            "description": "Integration events of Store on one durable topic exchange; the "
            "routing key is the event type. At-least-once delivery: consumers dedupe by event_id.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {"host": "rabbitmq:5672", "protocol": "amqp", "protocolVersion": "0.9.1"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _envelope_schema() -> dict[str, Any]:
    schema = Envelope.model_json_schema()
    schema.pop("title", None)
    return schema
