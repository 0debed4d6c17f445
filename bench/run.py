"""The benchmark run: start the ceiling and the distributed store, drive each workload, judge
the targets. A workload that fails is reported as failed (with what the shop answered) and
the run goes on; only a broken harness stops it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import archive, checkout, openloop, shop
from bench.machine import describe, rss_mb
from bench.report import (
    ADD_NEW,
    ADD_RETURNING,
    ARCHIVE,
    CATALOG,
    CEILING,
    CEILING_AGAIN,
    CEILING_HOP,
    CHECKOUT,
    CHECKOUT_STOCK,
    LOADGEN,
    OPEN_LOOP,
    OPEN_LOOP_RATE,
    OPEN_LOOP_WORKLOADS,
    OUTBOX,
    OUTBOX_EMPTY,
    OUTBOX_FULL,
    PAYMENT,
    PRODUCT_BY_KEY,
    PRODUCT_LIST,
    SEARCH,
    SEARCH_QUERIES,
    SUMMARY,
    Results,
    Row,
)
from bench.wrk import Measure, run_wrk

REPO = Path(__file__).resolve().parents[1]
LIST_QUERY = "locale=de&limit=20"


@dataclass(frozen=True)
class Plan:
    quick: bool
    duration_s: float  # each wrk workload
    warmup_s: float  # an unreported wrk run before each one
    connections: int
    returning_shoppers: int
    summary_shoppers: dict[int, int]  # lines -> how many carts of that size
    catalog_sizes: tuple[tuple[str, int], ...]
    checkout_s: float
    checkout_max_s: float
    checkout_concurrency: int
    payments: int
    payment_rate: float
    late_after_s: float  # a payment not paid by then is late (the quick run waits less)
    open_loop_s: float  # each open-loop run at OPEN_LOOP_RATE
    archive_orders: int  # the long order archive (the short one has ARCHIVE_SHORT)
    outbox_rows: int  # published rows put in the catalog's outbox
    outbox_rate: float  # product changes per second while timing their events
    outbox_changes: int
    workers: int
    only: frozenset[str] = frozenset()  # workload groups to run (empty: all of them)

    def wants(self, group: str) -> bool:
        return not group or not self.only or group in self.only


GROUPS = ("browse", "cart", "catalog", "checkout", "orders", "outbox")
ARCHIVE_SHORT = 10  # orders of the shopper the long archive is compared with
ARCHIVE_LIMIT = 5  # orders per archive page (the short archive must span two pages)


def plan(*, quick: bool, workers: int = 1, only: frozenset[str] = frozenset()) -> Plan:
    if quick:
        return Plan(
            quick=True,
            duration_s=1,
            warmup_s=0,
            connections=32,
            returning_shoppers=8,
            summary_shoppers={1: 4, 5: 4, 50: 1},
            catalog_sizes=(("1k", 1_000),),
            checkout_s=2,
            checkout_max_s=4,
            checkout_concurrency=4,
            payments=20,
            payment_rate=20,
            late_after_s=5,
            open_loop_s=1,
            archive_orders=10_000,
            outbox_rows=100_000,
            outbox_rate=20,
            outbox_changes=40,
            workers=workers,
            only=only,
        )
    return Plan(
        quick=False,
        duration_s=10,
        warmup_s=2,
        connections=32,
        returning_shoppers=500,
        summary_shoppers={1: 64, 5: 64, 50: 32},
        catalog_sizes=(("1k", 1_000), ("10k", 10_000), ("100k", 100_000)),
        checkout_s=10,
        checkout_max_s=240,  # long enough to place the 3,000 orders the payments need
        checkout_concurrency=32,
        payments=3_000,
        payment_rate=100,
        late_after_s=10,
        open_loop_s=10,
        archive_orders=10_000,
        outbox_rows=1_000_000,
        outbox_rate=20,
        outbox_changes=200,
        workers=workers,
        only=only,
    )


def group_of(workload: str) -> str:
    """The `--only` group a workload belongs to ("" for the ceilings, which always run)."""
    if workload in (PRODUCT_LIST, PRODUCT_BY_KEY):
        return "browse"
    if workload in (ADD_NEW, ADD_RETURNING) or workload.startswith(SUMMARY.split("{")[0]):
        return "cart"
    if any(workload == OPEN_LOOP.format(name, OPEN_LOOP_RATE) for name in (ADD_NEW, ADD_RETURNING)):
        return "cart"
    if workload.startswith(CATALOG.split("{")[0]) or workload.startswith(SEARCH.split("{")[0]):
        return "catalog"
    if workload in (CHECKOUT, PAYMENT, CHECKOUT_STOCK):
        return "checkout"
    if workload.startswith(ARCHIVE.split("{")[0]):
        return "orders"
    if workload.startswith(OUTBOX.split("{")[0]):
        return "outbox"
    return ""


def _count(n: int) -> str:
    """10000 -> "10k", 1000000 -> "1M" (how the targets name sizes)."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first[:300]


@contextlib.contextmanager
def _server(module: str, *args: str) -> Iterator[str]:
    """`python -m bench.<module> PORT ARGS...` in its own process; yields its base URL."""
    from tests.support.cluster import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", f"bench.{module}", str(port), *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"bench.{module} exited: {process.stderr.read().decode()[-500:]}"
                )  # type: ignore[union-attr]
            try:
                httpx.get(f"{url}/ping", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"bench.{module} did not start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class Bench:
    def __init__(self, plan: Plan, profile_dir: Path | None = None) -> None:
        self.plan = plan
        self.profile_dir = profile_dir
        self.pids: dict[str, int] = {}  # the store's processes, while it runs
        self.current = ""  # the workload being measured (names the profiles)
        self.results = Results(machine=describe())
        self.results.settings = {
            "mode": "quick" if plan.quick else "full",
            "load": f"wrk, 1 thread, {plan.connections} connections, "
            f"{plan.duration_s:g} s per workload after {plan.warmup_s:g} s of warm-up",
            "services": f"`store serve` x 5, {plan.workers} worker(s) each, PostgreSQL, "
            "Redis and RabbitMQ on loopback, all on this machine with the load generator",
        }
        self.workdir = Path(tempfile.mkdtemp(prefix="store-bench-"))
        self.generated = 0  # products added by the catalog's generator so far
        self.base_url = ""  # the running store's gateway

    # --- helpers ---------------------------------------------------------------------------

    def attempt(self, name: str, fn: Callable[[], Measure | Row]) -> Row | None:
        if not self.plan.wants(group_of(name)):
            return None
        _say(name)
        self.current = name
        try:
            outcome = fn()
            row = outcome if isinstance(outcome, Row) else Row(name, outcome)
        except Exception as exc:  # a failing workload is a result, not the end of the run
            row = Row(name, failure=_short(exc))
        row.workload = name
        self.results.rows.append(row)
        return row

    def fail(self, name: str, why: str) -> None:
        self.results.rows.append(Row(name, failure=why))

    def wrk(self, url: str, script: str, *args: str, connections: int | None = None) -> Measure:
        conns = connections or self.plan.connections
        if self.plan.warmup_s:
            run_wrk(url, script, *args, duration_s=self.plan.warmup_s, connections=conns)
        with self.profiling(self.plan.duration_s):
            return run_wrk(url, script, *args, duration_s=self.plan.duration_s, connections=conns)

    @contextlib.contextmanager
    def profiling(self, seconds: float) -> Iterator[None]:
        """With `--profile`: py-spy on every service while the measured run lasts."""
        if self.profile_dir is None or not self.pids:
            yield
            return
        from bench import profile

        recordings = profile.start(
            self.pids, seconds=seconds, directory=self.profile_dir, label=self.current
        )
        try:
            yield
        finally:
            summary = profile.finish(recordings, seconds=seconds, label=self.current)
            if summary:
                self.results.profiles.append(summary)

    def open_loop(self, base: str, requests: Callable[[int], openloop.Request]) -> Row:
        """`requests(i)` at OPEN_LOOP_RATE per second, latencies from each one's due time."""
        with self.profiling(self.plan.open_loop_s):
            measure = asyncio.run(
                openloop.drive(
                    base, requests, rate=OPEN_LOOP_RATE, duration_s=self.plan.open_loop_s
                )
            )
        return Row("", measure, note=f"{measure.requests + measure.errors:,} requests")

    def lines_file(self, name: str, lines: list[str]) -> str:
        path = self.workdir / name
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def with_probe(self, measure: Measure, probe: Callable[[], httpx.Response]) -> Row:
        """When wrk saw errors, one request of the same kind tells what the shop answered."""
        row = Row("", measure)
        if measure.errors:
            try:
                response = probe()
                row.note = "e.g. " + shop.explain(response) if response.status_code >= 400 else ""
            except httpx.HTTPError as exc:
                row.note = f"e.g. {exc!r}"
        return row

    # --- the run -----------------------------------------------------------------------------

    def ceiling_again(self) -> None:
        """The ceiling once more after the store stopped: how much the machine drifted."""
        with _server("ceiling") as url:
            self.attempt(CEILING_AGAIN, lambda: self.wrk(f"{url}/ping", "get.lua"))

    def ceilings(self) -> None:
        with _server("ceiling") as url:
            self.attempt(CEILING, lambda: self.wrk(f"{url}/ping", "get.lua"))
            with _server("ceiling", url) as hop:
                self.attempt(CEILING_HOP, lambda: self.wrk(f"{hop}/ping", "get.lua"))
        with _server("static_server") as url:
            self.attempt(LOADGEN, lambda: self.wrk(f"{url}/ping", "get.lua", connections=64))
            last = self.results.rows[-1]
            last.note = "64 connections"

    def store(self) -> None:
        from tests.support.cluster import distributed

        _say("starting the distributed store (migrate, setupproducts, 5 processes)")
        try:
            cluster = distributed(
                postgres_url=os.environ.get(
                    "STORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
                ),
                redis_url=os.environ.get("STORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                amqp_url=os.environ.get(
                    "STORE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"
                ),
                log_dir=self.workdir / "logs",
                workers=self.plan.workers,
            )
            (self.workdir / "logs").mkdir(exist_ok=True)
            running = cluster.__enter__()
        except Exception as exc:
            why = f"the store did not start: {_short(exc)}"
            _say(why)
            for name in self.store_workloads():
                self.fail(name, why)
            return
        try:
            self.workloads(running)
        finally:
            _say("stopping the store")
            # Signal all five at once; the launcher then only waits for each to be gone.
            for process in running.processes.values():
                with contextlib.suppress(OSError):
                    process.terminate()
            cluster.__exit__(None, None, None)

    def store_workloads(self) -> list[str]:
        names = [PRODUCT_LIST, PRODUCT_BY_KEY, ADD_NEW, ADD_RETURNING]
        names += [SUMMARY.format(n) for n in self.plan.summary_shoppers]
        names += [OPEN_LOOP.format(name, OPEN_LOOP_RATE) for name in OPEN_LOOP_WORKLOADS]
        names += [CATALOG.format(label) for label, _ in self.plan.catalog_sizes]
        names += [
            SEARCH.format(label, kind)
            for label, _ in self.plan.catalog_sizes
            for kind in SEARCH_QUERIES
        ]
        names += [CHECKOUT, PAYMENT, CHECKOUT_STOCK]
        names += [
            ARCHIVE.format(page, size)
            for size in (_count(self.plan.archive_orders), ARCHIVE_SHORT)
            for page in ("first", "deep")
        ]
        names += [OUTBOX_EMPTY, OUTBOX_FULL.format(_count(self.plan.outbox_rows))]
        return [name for name in names if self.plan.wants(group_of(name))]

    def workloads(self, running) -> None:  # type: ignore[no-untyped-def]
        base = running.base_url
        self.pids = running.pids()
        sync = httpx.Client(base_url=base, timeout=15, cookies=shop.no_cookie_jar())
        deadline_for = lambda seconds: time.monotonic() + seconds  # noqa: E731

        async def read_catalog(max_pages: int = 200) -> tuple[list[str], list[shop.Price]]:
            async with shop.client(base) as http:
                return await shop.catalog_prices(http, max_pages=max_pages)

        try:
            keys, prices = asyncio.run(read_catalog())
            seeded = shop.one_currency(prices)
        except Exception as exc:
            keys, seeded = [], []
            _say(f"cannot read the catalog: {_short(exc)}")
            catalog_error = f"cannot read the catalog: {_short(exc)}"
        else:
            catalog_error = "" if seeded else "the catalog lists no one-off prices"

        # Browsing the seeded catalog.
        list_url = f"{base}/api/store/products?{LIST_QUERY}"
        self.attempt(
            PRODUCT_LIST,
            lambda: self.with_probe(
                self.wrk(list_url, "get.lua"), lambda: sync.get(f"/api/store/products?{LIST_QUERY}")
            ),
        )

        def by_key() -> Row:
            if not keys:
                raise shop.PrepareError(catalog_error or "no products")
            paths = [f"/api/store/products/{k}?locale=de" for k in keys]
            measure = self.wrk(base, "get.lua", self.lines_file("product-paths", paths))
            return self.with_probe(measure, lambda: sync.get(paths[0]))

        self.attempt(PRODUCT_BY_KEY, by_key)

        # Adding to carts.
        def pricing_file() -> str:
            if not seeded:
                raise shop.PrepareError(catalog_error)
            return self.lines_file("pricings", [p.id for p in seeded[:5]])

        def add_probe(cookie: str = "") -> httpx.Response:
            return sync.post(
                "/api/store/cart/lines",
                json={"pricing_id": seeded[0].id, "quantity": 1},
                headers={"cookie": cookie} if cookie else {},
            )

        def add_new() -> Row:
            return self.with_probe(
                self.wrk(base, "add_to_cart.lua", pricing_file()), lambda: add_probe()
            )

        self.attempt(ADD_NEW, add_new)

        def add_new_open() -> Row:
            if not seeded:
                raise shop.PrepareError(catalog_error)
            return self.open_loop(
                base,
                lambda i: openloop.Request(
                    "POST",
                    "/api/store/cart/lines",
                    json={"pricing_id": seeded[i % min(5, len(seeded))].id, "quantity": 1},
                ),
            )

        self.attempt(OPEN_LOOP.format(ADD_NEW, OPEN_LOOP_RATE), add_new_open)

        async def shoppers(count: int, lines: list[shop.Price]) -> list[str]:
            async with shop.client(base, 16) as http:
                return await shop.make_shoppers(
                    http, count=count, lines=lines, deadline=deadline_for(120)
                )

        returning: list[str] = []

        def add_returning() -> Row:
            pricings = pricing_file()
            returning[:] = asyncio.run(shoppers(self.plan.returning_shoppers, seeded[:1]))
            measure = self.wrk(
                base, "add_to_cart.lua", pricings, self.lines_file("returning", returning)
            )
            row = self.with_probe(measure, lambda: add_probe(returning[0]))
            row.note = (row.note + "; " if row.note else "") + f"{len(returning)} shoppers"
            return row

        self.attempt(ADD_RETURNING, add_returning)

        def add_returning_open() -> Row:
            if not returning:
                raise shop.PrepareError("no returning shoppers (their workload failed)")
            prices = seeded[:5]
            return self.open_loop(
                base,
                lambda i: openloop.Request(
                    "POST",
                    "/api/store/cart/lines",
                    headers={"cookie": returning[i % len(returning)]},
                    json={"pricing_id": prices[i % len(prices)].id, "quantity": 1},
                ),
            )

        self.attempt(OPEN_LOOP.format(ADD_RETURNING, OPEN_LOOP_RATE), add_returning_open)

        # Growing the catalog to its first size gives the 50 distinct prices a 50-line cart needs.
        sizes = list(self.plan.catalog_sizes)
        size_notes: dict[str, str] = {}
        current = len(keys)
        currency = seeded[0].currency if seeded else "EUR"

        def grow(target: int) -> str:
            nonlocal current
            if current >= target:
                return f"{current} products"
            started = time.monotonic()
            how = self.grow_catalog(running, target - current, currency)
            current = target
            return f"grown by {how} in {time.monotonic() - started:.0f} s"

        first_label, first_size = sizes[0]
        growth_error = ""
        try:
            _say(f"growing the catalog to {first_size}")
            size_notes[first_label] = grow(first_size)
        except Exception as exc:
            growth_error = f"growing the catalog failed: {_short(exc)}"
            _say(growth_error)

        try:
            _, grown_prices = asyncio.run(read_catalog(max_pages=10))
            distinct = shop.one_currency(grown_prices)
        except Exception as exc:
            distinct = seeded
            _say(f"cannot re-read the catalog: {_short(exc)}")

        carts: dict[int, list[str]] = {}
        for lines, count in self.plan.summary_shoppers.items():

            def summary(lines: int = lines, count: int = count) -> Row:
                if len(distinct) < lines:
                    raise shop.PrepareError(
                        f"only {len(distinct)} distinct prices for a {lines}-line cart"
                        + (f" ({growth_error})" if growth_error else "")
                    )
                cookies = asyncio.run(shoppers(count, distinct[:lines]))
                measure = self.wrk(
                    f"{base}/api/store/cart",
                    "get.lua",
                    "",
                    self.lines_file(f"carts-{lines}", cookies),
                )
                row = self.with_probe(
                    measure, lambda: sync.get("/api/store/cart", headers={"cookie": cookies[0]})
                )
                row.note = (row.note + "; " if row.note else "") + f"{len(cookies)} carts"
                carts[lines] = cookies
                return row

            self.attempt(SUMMARY.format(lines), summary)
            if lines != 5:
                continue

            def summary_open(lines: int = lines) -> Row:
                cookies = carts.get(lines)
                if not cookies:
                    raise shop.PrepareError(f"no {lines}-line carts (their workload failed)")
                return self.open_loop(
                    base,
                    lambda i: openloop.Request(
                        "GET", "/api/store/cart", headers={"cookie": cookies[i % len(cookies)]}
                    ),
                )

            self.attempt(OPEN_LOOP.format(SUMMARY.format(lines), OPEN_LOOP_RATE), summary_open)

        # The catalog list page as the catalog grows; each run pages deep through it.
        for label, size in sizes if self.plan.wants("catalog") else []:
            name = CATALOG.format(label)
            if label != first_label:
                try:
                    _say(f"growing the catalog to {size}")
                    size_notes[label] = grow(size)
                except Exception as exc:
                    self.fail(name, f"growing the catalog failed: {_short(exc)}")
                    continue
            elif growth_error:
                self.fail(name, growth_error)
                continue

            def pages(label: str = label) -> Row:
                measure = self.wrk(base, "catalog_pages.lua", LIST_QUERY)
                row = self.with_probe(
                    measure, lambda: sync.get(f"/api/store/products?{LIST_QUERY}")
                )
                row.note = (row.note + "; " if row.note else "") + (
                    f"following next_cursor; catalog {size_notes.get(label, '')}"
                )
                return row

            self.attempt(name, pages)

            # Search pages at the same size, deep by cursor (relevance order) like the list.
            for kind, words in SEARCH_QUERIES.items():
                query = f"locale=en&limit=20&q={words}"

                def search_pages(label: str = label, query: str = query) -> Row:
                    measure = self.wrk(base, "catalog_pages.lua", query)
                    row = self.with_probe(measure, lambda: sync.get(f"/api/store/products?{query}"))
                    row.note = (row.note + "; " if row.note else "") + (
                        f"q in English, following next_cursor; catalog {size_notes.get(label, '')}"
                    )
                    return row

                self.attempt(SEARCH.format(label, kind), search_pages)

        # Checkout, then payments at the target rate.
        orders: list[checkout.Unpaid] = []

        def checkouts() -> Row:
            nonlocal orders
            if not seeded:
                raise shop.PrepareError(catalog_error)
            with self.profiling(self.plan.checkout_s):
                measure, orders = asyncio.run(
                    checkout.checkouts(
                        base,
                        seeded[0],
                        duration_s=self.plan.checkout_s,
                        min_orders=self.plan.payments,
                        max_s=self.plan.checkout_max_s,
                        concurrency=self.plan.checkout_concurrency,
                    )
                )
            return Row(
                CHECKOUT,
                measure,
                note=f"checkouts/s, {self.plan.checkout_concurrency} shoppers at a time; "
                "latency of POST /checkout",
            )

        self.attempt(CHECKOUT, checkouts)

        def payments() -> Row:
            if not orders:
                raise shop.PrepareError("no orders to pay (checkout failed)")
            batch = orders[: self.plan.payments]
            with self.profiling(self.plan.payments / self.plan.payment_rate):
                measure, late = asyncio.run(
                    checkout.payments(
                        base,
                        batch,
                        rate=self.plan.payment_rate,
                        amqp_url=running.env["STORE_BROKER_URL"],
                        exchange=running.env["STORE_EXCHANGE"],
                        late_after_s=self.plan.late_after_s,
                    )
                )
            self.results.payment_late = late
            self.results.payment_rate = self.plan.payment_rate
            self.results.payment_late_after_s = self.plan.late_after_s
            return Row(
                PAYMENT,
                measure,
                note=f"{len(batch):,} payments at {self.plan.payment_rate:g}/s; from the moment "
                "each POST /pay was due to the orders.order.paid.v1 event"
                + (
                    ""
                    if len(batch) == self.plan.payments
                    else f" (of {self.plan.payments:,} planned)"
                ),
            )

        self.attempt(PAYMENT, payments)

        def stocked_checkouts() -> Row:
            # The same checkouts (shipped goods, standard shipping), of a product that now
            # tracks stock: each one also checks, reserves and binds its units at catalog.
            if not seeded:
                raise shop.PrepareError(catalog_error)
            key = checkout.track_stock(running, seeded[0].product_key, on_hand=1_000_000)
            with self.profiling(self.plan.checkout_s):
                measure, _ = asyncio.run(
                    checkout.checkouts(
                        base,
                        seeded[0],
                        duration_s=self.plan.checkout_s,
                        min_orders=0,
                        max_s=self.plan.checkout_max_s,
                        concurrency=self.plan.checkout_concurrency,
                    )
                )
            return Row(
                CHECKOUT_STOCK,
                measure,
                note=f"checkouts/s of `{key}` (tracked), {self.plan.checkout_concurrency} "
                "shoppers at a time; latency of POST /checkout",
            )

        self.attempt(CHECKOUT_STOCK, stocked_checkouts)

        self.order_archive(running, seeded[0] if seeded else None, catalog_error)
        self.outbox(running, catalog_error if not seeded else "")

        for name, pid in running.pids().items():
            self.results.memory[name] = rss_mb(pid)
        sync.close()

    def order_archive(self, running, price: shop.Price | None, why_not: str) -> None:  # type: ignore[no-untyped-def]
        """The archive's first and deepest page for a shopper with many orders and for one
        with ARCHIVE_SHORT: the same query, and it should cost the same."""
        if not self.plan.wants("orders"):
            return
        base = self.base_url = running.base_url
        sizes = (self.plan.archive_orders, ARCHIVE_SHORT)
        names = [ARCHIVE.format(page, _count(n)) for n in sizes for page in ("first", "deep")]
        if price is None:
            for name in names:
                self.fail(name, why_not or "no price to check out with")
            return

        async def place() -> list[checkout.Unpaid]:
            async with shop.client(base, 4) as http:
                return [(await checkout.place_order(http, price))[0] for _ in sizes]

        try:
            _say(f"placing orders for the archive ({' and '.join(map(str, sizes))} orders)")
            placed = asyncio.run(place())
            started = time.monotonic()
            archives = [
                asyncio.run(
                    archive.copy_orders(running.env["ORDERS_DATABASE_URL"], order.order_id, n)
                )
                for order, n in zip(placed, sizes, strict=True)
            ]
            took = time.monotonic() - started
        except Exception as exc:
            for name in names:
                self.fail(name, f"preparing the archive failed: {_short(exc)}")
            return
        sync = httpx.Client(base_url=base, timeout=15, cookies=shop.no_cookie_jar())
        try:
            for order, made, n in zip(placed, archives, sizes, strict=True):
                first = f"/api/store/orders?limit={ARCHIVE_LIMIT}"
                deep = f"{first}&cursor={archive.deep_cursor(made, ARCHIVE_LIMIT)}"
                note = f"{ARCHIVE_LIMIT} orders a page" + (
                    f"; {n:,} orders written in {took:.0f} s" if n == sizes[0] else ""
                )
                for page, path in (("first", first), ("deep", deep)):
                    self.attempt(
                        ARCHIVE.format(page, _count(n)),
                        functools.partial(
                            self.archive_page,
                            sync,
                            order.cookie,
                            path,
                            deep=page == "deep",
                            note=note,
                        ),
                    )
        finally:
            sync.close()

    def archive_page(
        self, sync: httpx.Client, cookie: str, path: str, *, deep: bool, note: str
    ) -> Row:
        """One archive page over and over, after checking it is the page it should be."""
        answer = sync.get(path, headers={"cookie": cookie})
        shown = answer.json() if answer.status_code == 200 else {}
        items = len(shown.get("items", []))
        if items != ARCHIVE_LIMIT or (not deep and shown.get("next_cursor") is None):
            raise shop.PrepareError(
                f"{path} is not the page it should be: "
                + (
                    f"{items} orders, next_cursor {shown.get('next_cursor')!r}"
                    if shown
                    else shop.explain(answer)
                )
            )
        paths = self.lines_file("archive-path", [path])
        cookies = self.lines_file("archive-cookie", [cookie])
        row = self.with_probe(
            self.wrk(self.base_url, "get.lua", paths, cookies),
            lambda: sync.get(path, headers={"cookie": cookie}),
        )
        row.note = (row.note + "; " if row.note else "") + note
        return row

    def outbox(self, running, why_not: str) -> None:  # type: ignore[no-untyped-def]
        """How long a catalog change takes to reach the bus, with no published rows kept and
        then with `outbox_rows` of them: the relay's query must not grow with the history."""
        if not self.plan.wants("outbox"):
            return
        full = OUTBOX_FULL.format(_count(self.plan.outbox_rows))
        database = running.env["CATALOG_DATABASE_URL"]
        keys = [f"bench-{n:07d}" for n in range(min(self.generated, 500))]

        def publish(note: str) -> Row:
            if why_not or not keys:
                raise shop.PrepareError(why_not or "no generated products to change")
            with self.profiling(self.plan.outbox_changes / self.plan.outbox_rate):
                measure = asyncio.run(
                    archive.publish_latency(
                        f"http://127.0.0.1:{running.ports['catalog']}",
                        running.env["STORE_SERVICE_TOKEN"],
                        keys,
                        amqp_url=running.env["STORE_BROKER_URL"],
                        exchange=running.env["STORE_EXCHANGE"],
                        rate=self.plan.outbox_rate,
                        count=self.plan.outbox_changes,
                    )
                )
            return Row(
                "",
                measure,
                note=f"{self.plan.outbox_changes} product changes at {self.plan.outbox_rate:g}/s, "
                f"from each one's due time to its catalog.product.changed.v1 event; {note}",
            )

        def empty() -> Row:
            cleared = asyncio.run(archive.clear_published(database))
            return publish(f"catalog outbox cleared of {cleared:,} published rows")

        self.attempt(OUTBOX_EMPTY, empty)

        def retained() -> Row:
            _say(f"adding {self.plan.outbox_rows:,} published rows to the catalog's outbox")
            took = asyncio.run(archive.fill_outbox(database, self.plan.outbox_rows))
            return publish(f"rows added and VACUUM ANALYZE in {took:.0f} s")

        self.attempt(full, retained)

    def grow_catalog(self, running, count: int, currency: str) -> str:  # type: ignore[no-untyped-def]
        """Add `count` products: the catalog's bulk generator when it exists, else its write
        API (fine for a thousand, too slow for a hundred thousand)."""
        if shop.bulk_generator() is not None:
            self.generated += count
            return asyncio.run(
                shop.generate(
                    running.env["CATALOG_DATABASE_URL"],
                    count,
                    currency,
                    start=self.generated - count,
                )
            )
        if count > 20_000:
            raise shop.PrepareError(
                "services/catalog/bulk.py generate_products is needed for this size"
            )
        made = asyncio.run(
            shop.admin_products(
                f"http://127.0.0.1:{running.ports['catalog']}",
                running.env["STORE_SERVICE_TOKEN"],
                count=count,
                currency=currency,
                deadline=time.monotonic() + 180,
            )
        )
        if made < count:
            raise shop.PrepareError(f"the write API added only {made} of {count} products in time")
        return "the catalog's write API"


def run(plan: Plan, profile_dir: Path | None = None) -> Results:
    bench = Bench(plan, profile_dir)
    started = time.monotonic()
    bench.results.settings["load average before the run"] = " ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    bench.ceilings()
    bench.store()
    if not plan.quick:
        bench.ceiling_again()
    bench.results.settings["run took"] = f"{time.monotonic() - started:.0f} s"
    return bench.results
