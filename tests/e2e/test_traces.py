"""One checkout and payment is one trace: from the gateway through every service call and every
event to its consumers, in both modes.

The shopper's client starts the trace and sends its W3C `traceparent` with each request, as a
traced front end does. Embedded: the spans come from an in-memory exporter. Distributed: the
five `store serve` processes export over OTLP/HTTP to an in-test receiver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.settings import EMBEDDED_PUBLIC_URL
from libs.runtime.telemetry import Telemetry, trace_context
from tests.e2e.helpers import billing, one_off_price
from tests.support.cluster import distributed
from tests.support.traces import SpanRecord, from_sdk, otlp_receiver, render_tree

pytestmark = pytest.mark.e2e

SERVICES = {"gateway", "catalog", "cart", "orders", "payments"}
CONSUMED = {
    # consumer span name -> (consuming service, producing service)
    "process payments.payment.succeeded.v1": ("orders", "payments"),
    "process orders.order.paid.v1": ("cart", "orders"),
}
URLS = {"success_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}

Collected = Callable[[], list[SpanRecord]]


def shopper() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shopper"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def checkout_and_pay(http: httpx.AsyncClient, provider: TracerProvider) -> str:
    """Buy one thing and pay for it inside one shopper span; returns its trace id."""
    with provider.get_tracer("shopper").start_as_current_span("checkout and pay") as root:
        http.headers.update(trace_context())
        price = await one_off_price(http)
        added = await http.post(
            "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 1}
        )
        assert added.status_code == 200, added.text
        checkout = await http.post(
            "/api/store/checkout",
            json={"billing": billing(), "shipping": {"method": "standard"}, **URLS},
        )
        assert checkout.status_code == 200, checkout.text
        path = urlsplit(checkout.json()["payment"]["checkout_url"]).path
        paid = await http.post(f"{path}/pay")
        assert paid.status_code == 303, paid.text
    return format(root.get_span_context().trace_id, "032x")


async def the_trace(collected: Collected, trace_id: str) -> list[SpanRecord]:
    """The trace's spans once both consumers' spans and every span's parent arrived (bounded
    wait). Each process exports on its own schedule, so a consumer's span may arrive before
    the producer's span it hangs from; what is still missing at the bound, the asserts name."""
    spans: list[SpanRecord] = []
    for _ in range(300):
        spans = [s for s in collected() if s.trace_id == trace_id]
        ids = {s.span_id for s in spans}
        orphans = [s for s in spans if s.parent_id is not None and s.parent_id not in ids]
        if set(CONSUMED) <= {s.name for s in spans} and not orphans:
            return spans
        await asyncio.sleep(0.1)
    if not set(CONSUMED) <= {s.name for s in spans}:
        raise AssertionError(f"the consumers' spans never arrived:\n{render_tree(spans)}")
    return spans


def assert_one_connected_trace(spans: list[SpanRecord]) -> None:
    print("\n" + render_tree(spans))
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if s.parent_id not in by_id]
    assert [(r.service, r.name) for r in roots] == [("shopper", "checkout and pay")], roots
    assert SERVICES <= {s.service for s in spans}, "a process left no span in the trace"
    for name, (consumer, producer) in CONSUMED.items():
        process = next(s for s in spans if s.name == name)
        assert process.service == consumer and process.kind == "CONSUMER"
        create = by_id[process.parent_id or ""]
        assert create.name == f"create {name.removeprefix('process ')}"
        assert create.service == producer and create.kind == "PRODUCER"
        assert process.links == (create.span_id,), "the consumer's span links the producer's"


async def test_embedded_checkout_and_payment_is_one_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.embedded import create_embedded_app
    from libs.runtime.settings import RuntimeSettings

    monkeypatch.setenv("GATEWAY_RETURN_URL_HOSTS", "shop.example")
    exporter = InMemorySpanExporter()
    app = create_embedded_app(
        RuntimeSettings(data_dir=tmp_path), Telemetry([exporter], batch=False)
    )
    provider, own = shopper()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=EMBEDDED_PUBLIC_URL, timeout=15
        ) as http,
    ):
        trace_id = await checkout_and_pay(http, provider)

        def collected() -> list[SpanRecord]:
            return [
                from_sdk(s) for s in (*exporter.get_finished_spans(), *own.get_finished_spans())
            ]

        spans = await the_trace(collected, trace_id)
    assert_one_connected_trace(spans)


@pytest.fixture
def traced_cluster(
    postgres_server_url: str, redis_url: str, amqp_url: str, tmp_path: Path
) -> Iterator[tuple[str, Collected]]:
    with (
        otlp_receiver() as receiver,
        distributed(
            postgres_url=postgres_server_url,
            redis_url=redis_url,
            amqp_url=amqp_url,
            log_dir=tmp_path,
            extra_env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            },
        ) as store,
    ):
        yield store.base_url, receiver.received


async def test_distributed_checkout_and_payment_is_one_trace(
    traced_cluster: tuple[str, Collected],
) -> None:
    base_url, received = traced_cluster
    provider, own = shopper()
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        trace_id = await checkout_and_pay(http, provider)

    def collected() -> list[SpanRecord]:
        return [*received(), *(from_sdk(s) for s in own.get_finished_spans())]

    assert_one_connected_trace(await the_trace(collected, trace_id))
