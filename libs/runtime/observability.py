"""Logs, metrics and the correlation id that follows a request through services and events.

Log lines carry the `trace_id` and `span_id` of the current span when tracing is on (see
libs/runtime/telemetry.py), so a line leads to its trace and a trace to its lines.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

import structlog
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_HEADER = "x-correlation-id"

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def set_correlation_id(value: str | None) -> None:
    _correlation_id.set(value)
    structlog.contextvars.bind_contextvars(correlation_id=value)


@dataclass(frozen=True)
class _Metrics:
    requests: Counter
    latency: Histogram
    events_published: Counter
    events_consumed: Counter
    events_failed: Counter
    events_dead_lettered: Counter
    events_duplicate: Counter


def _build_metrics() -> _Metrics:
    # prometheus-client keeps one registry per process; in embedded mode the services share it
    # and are told apart by the `service` label.
    return _Metrics(
        requests=Counter(
            "store_http_requests_total", "HTTP requests.", ["service", "method", "route", "status"]
        ),
        latency=Histogram(
            "store_http_request_seconds",
            "HTTP request latency.",
            ["service", "method", "route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        ),
        events_published=Counter("store_events_published_total", "Events published.", ["type"]),
        events_consumed=Counter(
            "store_events_consumed_total", "Events handled.", ["consumer", "type"]
        ),
        events_failed=Counter(
            "store_events_failed_total", "Event handler failures.", ["consumer", "type"]
        ),
        events_dead_lettered=Counter(
            "store_events_dead_lettered_total", "Events sent to a dead-letter queue.", ["consumer"]
        ),
        events_duplicate=Counter(
            "store_events_duplicate_total", "Redelivered events skipped.", ["consumer"]
        ),
    )


metrics = _build_metrics()


def add_trace_ids(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Add the current span's `trace_id` and `span_id` (hex, as trace tools show them)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def configure_logging(*, fmt: str = "console", level: str = "INFO") -> None:
    """Structured logs with the correlation id; JSON lines in production."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class ObservabilityMiddleware:
    """Sets the correlation id of each request and records its count and latency."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, CORRELATION_HEADER)
        correlation_id = incoming if incoming and len(incoming) <= 100 else uuid.uuid4().hex
        token = _correlation_id.set(correlation_id)
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((CORRELATION_HEADER.encode(), correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.requests.labels(self.service, method, template, str(status)).inc()
            metrics.latency.labels(self.service, method, template).observe(
                time.perf_counter() - started
            )
            _correlation_id.reset(token)
            structlog.contextvars.unbind_contextvars("correlation_id")


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key == wanted:
            return value.decode("latin-1")
    return None


async def metrics_endpoint(_: Request) -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
