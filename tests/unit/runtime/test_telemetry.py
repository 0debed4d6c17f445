"""Tracing is configured from the standard OTEL_* variables, logs carry the trace ids, and an
event carries the trace context of the transaction that wrote it."""

from __future__ import annotations

import io
import json

import pytest
import structlog
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.runtime.observability import configure_logging
from libs.runtime.telemetry import Telemetry, _exporters, trace_context


def kinds(environ: dict[str, str]) -> list[type]:
    return [type(e) for e in _exporters(environ)]


def test_no_exporter_unless_asked_for() -> None:
    assert kinds({}) == []
    assert not Telemetry.from_env({}).enabled


def test_an_otlp_endpoint_turns_on_the_otlp_exporter() -> None:
    assert kinds({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == [OTLPSpanExporter]


def test_the_console_exporter_is_chosen_by_name() -> None:
    assert kinds({"OTEL_TRACES_EXPORTER": "console"}) == [ConsoleSpanExporter]


def test_none_and_sdk_disabled_win_over_an_endpoint() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert kinds({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) == []
    assert kinds({**endpoint, "OTEL_SDK_DISABLED": "true"}) == []


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "jaeger"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
)
def test_an_unknown_exporter_or_protocol_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="OTEL_"):
        _exporters(environ)


def test_each_service_names_its_spans() -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry([exporter], batch=False)
    with telemetry.tracer("orders").start_as_current_span("outer"):
        # what an HTTP client does: its span belongs to the caller, whichever it is
        with telemetry.caller.get_tracer("http").start_as_current_span("call"):
            pass
    services = {
        s.name: s.resource.attributes["service.name"] for s in exporter.get_finished_spans()
    }
    assert services == {"outer": "orders", "call": "orders"}


def test_logs_carry_trace_and_span_ids() -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry([exporter], batch=False)
    out = io.StringIO()
    configure_logging(fmt="json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=out))
    try:
        with telemetry.tracer("cart").start_as_current_span("work") as span:
            structlog.get_logger("test").info("inside")
        structlog.get_logger("test").info("outside")
    finally:
        structlog.reset_defaults()
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside and "span_id" not in outside


def test_an_event_carries_the_context_of_the_span_that_wrote_it() -> None:
    telemetry = Telemetry([InMemorySpanExporter()], batch=False)
    payload = AnonymousMerged(anonymous_id="a", user_id="u")
    with telemetry.producing("cart", payload.event_type) as span:
        envelope = Envelope.wrap(payload, producer="cart", **trace_context())
    trace_id = format(span.get_span_context().trace_id, "032x")
    span_id = format(span.get_span_context().span_id, "016x")
    assert (envelope.traceparent or "").startswith(f"00-{trace_id}-{span_id}-")
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again.traceparent == envelope.traceparent


def test_without_tracing_an_event_has_no_trace_context() -> None:
    payload = AnonymousMerged(anonymous_id="a", user_id="u")
    with Telemetry().producing("cart", payload.event_type):
        envelope = Envelope.wrap(payload, producer="cart", **trace_context())
    assert envelope.traceparent is None and envelope.tracestate is None
