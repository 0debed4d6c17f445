"""Traces: OpenTelemetry from the gateway through every service call and every event.

Configured from the standard `OTEL_*` variables when an app is built, never at import. No
exporter unless one is asked for: `OTEL_TRACES_EXPORTER=otlp|console|none` (a comma list), or
OTLP over HTTP as soon as `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.
Without an exporter nothing is instrumented, so a store without a collector pays nothing.

One process holds one span pipeline and one tracer provider per service it hosts: in the
embedded mode every span still names the service that made it (resource `service.name`).

Events carry the W3C trace context of the transaction that wrote them to the outbox
(`traceparent`/`tracestate` in the envelope); a consumer's span continues that trace and is
linked to the producer's span.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, SpanKind, Tracer
from opentelemetry.util._decorator import _agnosticcontextmanager

from libs.contracts.envelope import Envelope

NAMESPACE = "store"
TRACER = "store"
# Probes and scrapes would drown the traces that matter.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"
TRACE_FIELDS = ("traceparent", "tracestate")


class Telemetry:
    """A process's tracing: one span pipeline, one tracer provider per service it hosts."""

    def __init__(self, exporters: Sequence[SpanExporter] = (), *, batch: bool = True) -> None:
        self.enabled = bool(exporters)
        self._pipeline = SynchronousMultiSpanProcessor()
        for exporter in exporters:
            processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
            self._pipeline.add_span_processor(processor)
        self._providers: dict[str, TracerProvider] = {}
        self.caller = _CallerTracerProvider(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Telemetry:
        """The exporters the `OTEL_*` variables ask for (none by default)."""
        return cls(_exporters(os.environ if environ is None else environ))

    def provider(self, service: str) -> trace.TracerProvider:
        """The tracer provider whose spans name `service`."""
        if not self.enabled:
            return trace.NoOpTracerProvider()
        if service not in self._providers:
            self._providers[service] = TracerProvider(
                # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; the service name wins.
                resource=Resource.create({"service.name": service, "service.namespace": NAMESPACE}),
                active_span_processor=self._pipeline,
                shutdown_on_exit=False,
            )
        return self._providers[service]

    def tracer(self, service: str) -> Tracer:
        """The tracer of `service`'s own spans (events)."""
        return self.provider(service).get_tracer(TRACER)

    def instrument_app(self, app: Any, service: str) -> None:
        """Trace every inbound request of a FastAPI app as a server span of `service`."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider(service),
            excluded_urls=EXCLUDED_URLS,
            exclude_spans=["receive", "send"],
        )

    def instrument_httpx(self, client: Any, *, peer: str) -> None:
        """Trace the calls of an httpx client to `peer` as client spans of the caller."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        async def name(span: trace.Span, request: Any) -> None:  # async: the client is async
            _name_call(span, request.method, peer)

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.caller, request_hook=name
        )

    def aiohttp_trace_configs(self, *, peer: str) -> list[Any]:
        """aiohttp trace configs that trace each call to `peer` as a client span of the caller."""
        if not self.enabled:
            return []
        from opentelemetry.instrumentation.aiohttp_client import create_trace_config

        def name(span: trace.Span, params: Any) -> None:
            _name_call(span, params.method, peer)

        return [create_trace_config(tracer_provider=self.caller, request_hook=name)]

    @contextmanager
    def producing(self, service: str, event_type: str) -> Iterator[trace.Span]:
        """The span of writing one event to the outbox; the event carries its context."""
        with self.tracer(service).start_as_current_span(
            f"create {event_type}",
            kind=SpanKind.PRODUCER,
            attributes=_messaging(event_type, "create"),
        ) as span:
            yield span

    @contextmanager
    def publishing(self, service: str, envelope: Envelope) -> Iterator[trace.Span]:
        """The span of the relay handing one outbox row to the broker."""
        with self.tracer(service).start_as_current_span(
            f"send {envelope.type}",
            context=extract(trace_carrier(envelope)),
            kind=SpanKind.PRODUCER,
            attributes=_messaging(envelope.type, "send", envelope),
        ) as span:
            yield span

    @contextmanager
    def consuming(self, service: str, envelope: Envelope) -> Iterator[trace.Span]:
        """A consumer's span: continues the producer's trace and is linked to its span."""
        parent = extract(trace_carrier(envelope))
        producer = trace.get_current_span(parent).get_span_context()
        with self.tracer(service).start_as_current_span(
            f"process {envelope.type}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=[Link(producer)] if producer.is_valid else None,
            attributes={
                **_messaging(envelope.type, "process", envelope),
                "messaging.consumer.group.name": service,
            },
        ) as span:
            yield span

    def force_flush(self, timeout_ms: int = 10_000) -> bool:
        """Export every finished span now."""
        return self._pipeline.force_flush(timeout_ms)

    def shutdown(self) -> None:
        """Flush and stop the exporters."""
        self._pipeline.shutdown()


def trace_context() -> dict[str, str]:
    """The W3C trace context of the current span, as envelope fields (empty if none)."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return {key: carrier[key] for key in TRACE_FIELDS if carrier.get(key)}


def trace_carrier(envelope: Envelope) -> dict[str, str]:
    """An envelope's trace context, as the propagator reads it."""
    return {
        key: value for key in TRACE_FIELDS if (value := getattr(envelope, key, None)) is not None
    }


def _name_call(span: trace.Span, method: str | bytes, peer: str) -> None:
    method = method.decode() if isinstance(method, bytes) else method
    span.update_name(f"{method} {peer}")
    span.set_attribute("peer.service", peer)


def _messaging(event_type: str, operation: str, envelope: Envelope | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": operation,
        "messaging.destination.name": event_type,
    }
    if envelope is not None:
        attributes["messaging.message.id"] = str(envelope.event_id)
    return attributes


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in _exporter_names(environ):
        build = _EXPORTERS.get(name)
        if build is None:
            raise ValueError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of otlp, console, none")
        exporters.append(build(environ))
    return exporters


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    """OTEL_TRACES_EXPORTER's names ("none" dropped); otlp by default once an endpoint is set."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = environ.get("OTEL_TRACES_EXPORTER")
    if names is None:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = "otlp" if endpoint else "none"
    stripped = (name.strip().lower() for name in names.split(","))
    return [name for name in stripped if name and name != "none"]


def _console_exporter(environ: Mapping[str, str]) -> SpanExporter:
    return ConsoleSpanExporter(service_name=None)


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol != "http/protobuf":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is built in, not {protocol!r}"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: from the OTEL_EXPORTER_OTLP_* variables


_EXPORTERS: dict[str, Callable[[Mapping[str, str]], SpanExporter]] = {
    "console": _console_exporter,
    "otlp": _otlp_exporter,
}


class _CallerTracerProvider(trace.TracerProvider):
    """Hands out tracers that make each span in the name of the service whose span is current.

    An HTTP client is shared by every service of the embedded process; its client spans must
    still name the service that made the call, which is the service of the current span.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> Tracer:
        return _CallerTracer(
            self._telemetry, instrumenting_module_name, instrumenting_library_version
        )


class _CallerTracer(Tracer):
    def __init__(self, telemetry: Telemetry, name: str, version: str | None) -> None:
        self._telemetry = telemetry
        self._name = name
        self._version = version

    def _tracer(self, context: Any = None) -> Tracer:
        resource = getattr(trace.get_current_span(context), "resource", None)
        service = resource.attributes.get("service.name") if resource is not None else None
        return self._telemetry.provider(str(service or NAMESPACE)).get_tracer(
            self._name, self._version
        )

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer(context).start_span(name, context, *args, **kwargs)

    @_agnosticcontextmanager
    def start_as_current_span(
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        with self._tracer(context).start_as_current_span(name, context, *args, **kwargs) as span:
            yield span
