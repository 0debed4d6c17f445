"""The fault suite's run: start the distributed store behind TCP proxies of our own, keep
shoppers buying, inject each fault in turn, and after each one wait for the invariants to hold.

Everything listens on and talks to 127.0.0.1; every loop is bounded in count and time; what the
run starts (processes, proxies, databases, exchange and queues) it stops or removes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from bench.checkout import PaidProbe
from bench.shop import no_cookie_jar
from chaos.invariants import Verdict, check
from chaos.proxy import TcpProxy
from chaos.shoppers import Shopper, Traffic, first_price, shop_until
from chaos.stock import StockVerdict, check_stock, track
from tests.support.cluster import SERVICES, RunningStore, distributed

ALL = (*SERVICES, "gateway")


@dataclass(frozen=True)
class Plan:
    quick: bool
    shoppers: int
    warmup_s: float  # traffic before the fault
    after_s: float  # traffic after recovery
    kill_pause_s: float  # how long a killed service stays down
    broker_cuts_s: tuple[float, ...]
    redis_cut_s: float
    postgres_cut_s: float
    consistency_within_s: float  # how long to wait for the invariants after a fault
    client_budget_s: float  # how long a shopper retries one step
    faults: tuple[str, ...] = ()  # run only the faults whose name contains one of these

    @classmethod
    def make(
        cls, *, quick: bool, shoppers: int | None = None, faults: tuple[str, ...] = ()
    ) -> Plan:
        if quick:
            return cls(True, shoppers or 6, 3, 3, 3, (10,), 5, 15, 90, 60, faults)
        return cls(False, shoppers or 16, 8, 8, 5, (10, 120), 20, 130, 180, 240, faults)

    def wants(self, fault: str) -> bool:
        return not self.faults or any(part in fault for part in self.faults)


@dataclass
class Row:
    fault: str
    lost: int
    doubled: int
    unpublished: int
    parked: int
    server_errors_after_recovery: int
    consistent_after_s: float | None
    paid: int  # orders paid during this phase
    ready_after_s: float = 0.0  # from the end of the fault until every process said ready
    stock_problems: int = 0  # stock that disagrees with the orders (chaos/stock.py)
    held_unpaid: int = 0  # holds of checkouts that never paid: released at their deadline
    detail: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.lost == 0
            and self.doubled == 0
            and self.unpublished == 0
            and self.server_errors_after_recovery == 0
            and self.stock_problems == 0
            and self.consistent_after_s is not None
        )


def _say(text: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", flush=True)


class Chaos:
    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.server_url = os.environ.get(
            "STORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
        self.redis_url = os.environ.get("STORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
        self.amqp_url = os.environ.get("STORE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
        self.proxies = {
            "postgres": TcpProxy(urlsplit(self.server_url).port or 5432),
            "redis": TcpProxy(urlsplit(self.redis_url).port or 6379),
            "broker": TcpProxy(urlsplit(self.amqp_url).port or 5672),
        }
        token = uuid.uuid4().hex[:10]
        self.exchange = f"store.chaos.{token}"
        self.queue_prefix = f"chaos.{token}"
        self.store: RunningStore | None = None
        self.databases: dict[str, str] = {}
        self.events = PaidProbe(self.amqp_url, self.exchange)
        self.traffic = Traffic()
        self.pricing_id = ""
        self.rows: list[Row] = []

    # --- set-up ------------------------------------------------------------------------------

    def _via(self, url: str, proxy: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.proxies[proxy].port}"
        netloc[-1] = host
        return parts._replace(netloc="@".join(netloc)).geturl()

    def _env(self) -> dict[str, str]:
        return {
            "STORE_EXCHANGE": self.exchange,
            "STORE_QUEUE_PREFIX": self.queue_prefix,
            "STORE_SERVICE_TOKEN": secrets.token_hex(32),
            "GATEWAY_JWT_SECRET": secrets.token_hex(32),
            "GATEWAY_COOKIE_SECRET": secrets.token_hex(32),
            "GATEWAY_COOKIE_SECURE": "false",
            "PAYMENTS_PROVIDER": "dev",
        }

    async def __aenter__(self) -> Chaos:
        for proxy in self.proxies.values():
            await proxy.start()
        await self.events.__aenter__()
        self._cluster = distributed(
            postgres_url=self._via(self.server_url, "postgres"),
            redis_url=self._via(self.redis_url, "redis"),
            amqp_url=self._via(self.amqp_url, "broker"),
            log_dir=self.workdir,
            extra_env=self._env(),
        )
        _say("starting the distributed store (migrate, setupproducts, five processes)")
        self.store = await asyncio.to_thread(self._cluster.__enter__)
        self.databases = {
            name: self.store.env[f"{name.upper()}_DATABASE_URL"].rsplit("/", 1)[1]
            for name in SERVICES
        }
        self.pricing_id = await first_price(self.store.base_url)
        # The product bought tracks stock: every fault is also a stock experiment.
        await track(self.store, self.pricing_id)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proxy in self.proxies.values():
            await proxy.restore()
        with contextlib.suppress(Exception):
            await self.events.__aexit__(None, None, None)
        await asyncio.to_thread(self._cluster.__exit__, None, None, None)
        for proxy in self.proxies.values():
            await proxy.stop()

    # --- one fault ---------------------------------------------------------------------------

    async def phase(
        self, name: str, inject: Callable[[], Awaitable[None]], lift: Callable[[], Awaitable[None]]
    ) -> Row:
        """Traffic, the fault, recovery, more traffic; then wait for the invariants."""
        assert self.store is not None
        _say(f"fault: {name}")
        stop = asyncio.Event()
        traffic = asyncio.create_task(
            shop_until(
                stop,
                base_url=self.store.base_url,
                pricing_id=self.pricing_id,
                traffic=self.traffic,
                shoppers=self.plan.shoppers,
                budget_s=self.plan.client_budget_s,
                max_purchases=2000,
            )
        )
        await asyncio.sleep(self.plan.warmup_s)
        await inject()
        await lift()
        lifted = time.monotonic()
        recovered = await self._ready_again(lifted)
        await asyncio.sleep(self.plan.after_s)
        stop.set()
        await asyncio.wait_for(traffic, self.plan.client_budget_s * 4 + 30)
        verdict, stock, consistent_at = await self._consistency()
        server_errors = self.traffic.server_errors_since(recovered)
        row = Row(
            fault=name,
            lost=len(verdict.lost),
            doubled=len(verdict.doubled),
            unpublished=verdict.unpublished,
            parked=verdict.parked,
            server_errors_after_recovery=len(server_errors),
            consistent_after_s=None if consistent_at is None else consistent_at - lifted,
            paid=verdict.paid_attempts - sum(r.paid for r in self.rows),
            ready_after_s=recovered - lifted,
            stock_problems=len(stock.problems),
            held_unpaid=stock.held_unpaid,
            detail=[
                *verdict.lost[:5],
                *verdict.doubled[:5],
                *stock.problems[:5],
                *server_errors[:3],
            ],
        )
        _say(f"  {row}")
        self.rows.append(row)
        return row

    async def _ready_again(self, since: float) -> float:
        """The moment every process is ready again, not merely degraded (bounded)."""
        assert self.store is not None
        async with httpx.AsyncClient(timeout=3) as http:
            for _ in range(600):
                ok = 0
                for name in ALL:
                    with contextlib.suppress(httpx.HTTPError):
                        url = f"http://127.0.0.1:{self.store.ports[name]}/readyz"
                        response = await http.get(url)
                        ok += response.status_code == 200 and response.json()["status"] == "ready"
                if ok == len(ALL):
                    return time.monotonic()
                await asyncio.sleep(0.5)
        return since

    async def _consistency(self) -> tuple[Verdict, StockVerdict, float | None]:
        deadline = time.monotonic() + self.plan.consistency_within_s
        verdict = Verdict(lost=["not checked yet"])
        stock = StockVerdict(problems=["not checked yet"])
        polls = 0
        _say("  traffic stopped; checking the invariants")
        while True:
            try:
                verdict = await check(
                    self.server_url, self.databases, self.events, self.traffic.paid
                )
                stock = await check_stock(self.server_url, self.databases, self.pricing_id)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                # The shared server may refuse the checker for a moment (too many clients):
                # not a verdict, try again within the bound.
                _say(f"  the check could not read the databases: {exc!r}")
            if verdict.consistent and not stock.problems:
                return verdict, stock, time.monotonic()
            if time.monotonic() > deadline:
                return verdict, stock, None
            polls += 1
            if polls % 10 == 0:
                _say(
                    f"  waiting: {len(verdict.lost)} lost, {len(verdict.doubled)} doubled, "
                    f"{verdict.unpublished} unpublished so far"
                )
            await asyncio.sleep(0.5)

    # --- the faults --------------------------------------------------------------------------

    async def kill(self, name: str) -> Row:
        assert self.store is not None
        store = self.store

        async def inject() -> None:
            process = store.processes[name]
            process.kill()  # SIGKILL: no shutdown, no drain
            await asyncio.to_thread(process.wait, 10)
            await asyncio.sleep(self.plan.kill_pause_s)

        async def lift() -> None:
            await asyncio.to_thread(store.start, name)

        return await self.phase(f"kill -9 {name}", inject, lift)

    async def cut(self, backing: str, seconds: float) -> Row:
        proxy = self.proxies[backing]

        async def inject() -> None:
            await proxy.cut()
            await asyncio.sleep(seconds)

        return await self.phase(f"{backing} cut {seconds:g} s", inject, proxy.restore)

    async def duplicate_pays(self) -> Row:
        """Each of a few fresh orders paid by concurrent and repeated pay-page deliveries."""
        assert self.store is not None
        store = self.store

        async def inject() -> None:
            async with httpx.AsyncClient(
                base_url=store.base_url, timeout=15, cookies=no_cookie_jar()
            ) as http:
                for _ in range(5):  # fresh orders, each paid by five concurrent deliveries
                    shopper = Shopper(http, self.traffic, self.pricing_id, 30)
                    order_id, path, attempt_id = await shopper.checkout()
                    await asyncio.gather(
                        *(shopper.pay(order_id, path, attempt_id) for _ in range(5)),
                        return_exceptions=True,
                    )
                # Replays of orders already paid: they must change nothing.
                for path in list(self.traffic.checkouts.values())[:10]:
                    for _ in range(3):
                        with contextlib.suppress(httpx.HTTPError):
                            await http.post(path)

        return await self.phase("duplicate and concurrent pay", inject, _nothing)

    async def poison(self) -> Row:
        """Unreadable, invalid and unknown messages on the exchange, to every consumer."""

        async def inject() -> None:
            import aio_pika

            connection = await aio_pika.connect(self.amqp_url, timeout=10)
            try:
                channel = await connection.channel()
                exchange = await channel.get_exchange(self.exchange)
                bodies = [
                    ("payments.payment.succeeded.v1", b"not json"),
                    ("payments.payment.succeeded.v1", json.dumps({"type": "x"}).encode()),
                    ("catalog.pricing.changed.v1", b"\xff\xfe"),
                    ("orders.order.paid.v1", json.dumps({"event_id": "nope"}).encode()),
                    ("identity.anonymous.merged.v1", b"{}"),
                ]
                for routing_key, body in bodies:
                    await exchange.publish(aio_pika.Message(body=body), routing_key=routing_key)
            finally:
                await connection.close()

        return await self.phase("poison messages", inject, _nothing)


async def _nothing() -> None:
    return None


async def run(plan: Plan, workdir: Path) -> list[Row]:
    async with Chaos(plan, workdir) as chaos:
        if plan.wants("none (baseline)"):
            await chaos.phase("none (baseline)", _nothing, _nothing)
        for name in ALL:
            if plan.wants(f"kill -9 {name}"):
                await chaos.kill(name)
        for seconds in plan.broker_cuts_s:
            if plan.wants(f"broker cut {seconds:g} s"):
                await chaos.cut("broker", seconds)
        if plan.wants(f"redis cut {plan.redis_cut_s:g} s"):
            await chaos.cut("redis", plan.redis_cut_s)
        if plan.wants(f"postgres cut {plan.postgres_cut_s:g} s"):
            await chaos.cut("postgres", plan.postgres_cut_s)
        if plan.wants("duplicate and concurrent pay"):
            await chaos.duplicate_pays()
        if plan.wants("poison messages"):
            await chaos.poison()
        return chaos.rows


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | paid | lost | doubled | unpublished (parked) | 5xx after recovery "
        "| stock off (held unpaid) | ready after | consistent after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        consistent = (
            "not within the bound"
            if row.consistent_after_s is None
            else f"{row.consistent_after_s:.1f} s"
        )
        lines.append(
            f"| {row.fault} | {row.paid} | {row.lost} | {row.doubled} | "
            f"{row.unpublished} ({row.parked}) | {row.server_errors_after_recovery} | "
            f"{row.stock_problems} ({row.held_unpaid}) | {row.ready_after_s:.1f} s | {consistent} |"
        )
    return "\n".join(lines)
