"""Start Store as real processes for end-to-end tests and the benchmark.

`embedded()` runs `store dev` (one process, SQLite, in-process bus). `distributed()` runs the
five `store serve` processes over real PostgreSQL (fresh databases), Redis and RabbitMQ (a
uniquely named exchange and queues), after `store migrate` and `store setupproducts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = ("catalog", "cart", "orders", "payments")
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PRODUCTS = REPO / "deploy" / "products" / "example.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def store_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


@dataclass
class RunningStore:
    mode: str
    base_url: str
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def logs(self, name: str, tail: int = 60) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}

    def stop(self, name: str) -> None:
        process = self.processes[name]
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def start(self, name: str) -> None:
        """(Re)start one service of a distributed store on its port."""
        self.processes[name] = _spawn(
            store_command("serve", name, "--port", str(self.ports[name])),
            self.env,
            self.log_dir / f"{name}.log",
        )
        _wait_ready(f"http://127.0.0.1:{self.ports[name]}", self, name)

    def stop_all(self) -> None:
        for name in list(self.processes):
            with contextlib.suppress(Exception):
                self.stop(name)


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)


def _wait_ready(url: str, store: RunningStore, name: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        process = store.processes.get(name)
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{store.logs(name)}")
        try:
            response = httpx.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready after {timeout_s}s: {last}\n{store.logs(name)}")


# Tests and the benchmark send every request from 127.0.0.1: the gateway's rate limits are
# raised so they never answer 429 by accident (tests/security lowers them on purpose).
RAISED_RATE_LIMITS = {
    f"GATEWAY_RATE_LIMIT_{name}": "1000000/minute"
    for name in (
        "SESSIONS_PER_ADDRESS",
        "SESSIONS_PER_IDENTITY",
        "BILLING_PER_ADDRESS",
        "BILLING_PER_IDENTITY",
        "NEW_CARTS_PER_ADDRESS",
        "CART_WRITES_PER_IDENTITY",
    )
}


# Where the tests' shop front end lives: every test's success_url and cancel_url point there.
TEST_SHOP = {"GATEWAY_RETURN_URL_HOSTS": "shop.example"}


def distributed_secrets() -> dict[str, str]:
    """Fresh random secrets of the length the distributed mode requires, for one run."""
    return {
        "STORE_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "GATEWAY_JWT_SECRET": secrets.token_urlsafe(32),
        "GATEWAY_COOKIE_SECRET": secrets.token_urlsafe(32),
    }


def _base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "STORE_",
                "GATEWAY_",
                "CATALOG_",
                "CART_",
                "ORDERS_",
                "PAYMENTS_",
                "NOTIFICATIONS_",
                "FORWARDED_",
            )
        )
    }
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def embedded(data_dir: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[RunningStore]:
    """`store dev` in a subprocess with its own data folder."""
    port = free_port()
    # No GATEWAY_PUBLIC_URL: `store dev` builds links on the address it is served on.
    env = _base_env(
        STORE_DATA_DIR=str(data_dir), **{**RAISED_RATE_LIMITS, **TEST_SHOP, **(extra_env or {})}
    )
    store = RunningStore(
        "embedded", f"http://127.0.0.1:{port}", env, data_dir, ports={"store": port}
    )
    try:
        store.processes["store"] = _spawn(
            store_command("dev", "--port", str(port)), env, data_dir / "store.log"
        )
        _wait_ready(store.base_url, store, "store")
        yield store
    finally:
        store.stop_all()


async def _create_databases(server_url: str, names: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_databases(server_url: str, names: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# Every retry delay a test ladder may use (tests pick from these), so cleanup finds the rungs.
TEST_LADDER_DELAYS_MS = (10, 20, 50, 100, 1_000, 30_000)


async def delete_bus(
    amqp_url: str,
    exchange: str,
    prefix: str,
    consumers: tuple[str, ...] = (*SERVICES, "notifications"),
) -> None:
    """Remove a run's exchange and each consumer's queue, retry rungs and dead-letter queue."""
    import aio_pika

    from libs.contracts.topology import (
        DEFAULT_RETRY_LADDER_MS,
        UNCLAIMED,
        dead_letter_queue_name,
        queue_name,
        retry_queue_name,
    )

    delays = (*DEFAULT_RETRY_LADDER_MS, *TEST_LADDER_DELAYS_MS)
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.exchange_delete(exchange)
        for consumer in (*consumers, UNCLAIMED):
            names = [queue_name(prefix, consumer), dead_letter_queue_name(prefix, consumer)]
            names += [retry_queue_name(prefix, consumer, delay) for delay in delays]
            for name in names:
                await channel.queue_delete(name)
    finally:
        await connection.close()


@contextlib.contextmanager
def distributed(
    *,
    postgres_url: str,
    redis_url: str,
    amqp_url: str,
    log_dir: Path,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
) -> Iterator[RunningStore]:
    """The five services as separate processes on free ports, fresh databases and bus names."""
    from urllib.parse import urlsplit

    token = uuid.uuid4().hex[:10]
    databases = {name: f"store_{token}_{name}" for name in SERVICES}
    netloc = urlsplit(postgres_url).netloc
    ports = {name: free_port() for name in (*SERVICES, "gateway")}
    values = dict(
        STORE_BROKER_URL=amqp_url,
        STORE_REDIS_URL=redis_url,
        STORE_EXCHANGE=f"store.e2e.{token}",
        STORE_QUEUE_PREFIX=f"e2e.{token}",
        STORE_DATA_DIR=str(log_dir),
        STORE_LOG_FORMAT="json",
        STORE_LOG_LEVEL="WARNING",
        **distributed_secrets(),
        # Plain HTTP on loopback: the cookie may not be Secure, and the dev provider is chosen.
        GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{ports['gateway']}",
        GATEWAY_COOKIE_SECURE="false",
        PAYMENTS_PROVIDER="dev",
        **RAISED_RATE_LIMITS,
        **TEST_SHOP,
        ONE_OFF_PRODUCTS_AVAILABLE=str(EXAMPLE_PRODUCTS),
        **{f"STORE_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}" for name in SERVICES},
        **{
            f"{name.upper()}_DATABASE_URL": f"postgresql+asyncpg://{netloc}/{db}"
            for name, db in databases.items()
        },
    )
    env = _base_env(**{**values, **(extra_env or {})})
    store = RunningStore(
        "distributed", f"http://127.0.0.1:{ports['gateway']}", env, log_dir, ports=ports
    )
    asyncio.run(_create_databases(postgres_url, list(databases.values())))
    try:
        for step in (store_command("migrate"), store_command("setupproducts")):
            result = subprocess.run(step, env=env, cwd=REPO, capture_output=True, timeout=300)
            if result.returncode != 0:
                raise RuntimeError(
                    f"{' '.join(step[2:])} failed:\n{result.stdout.decode()}\n{result.stderr.decode()}"
                )
        for name in (*SERVICES, "gateway"):
            command = store_command("serve", name, "--port", str(ports[name]))
            if workers > 1:
                command += ["--workers", str(workers)]
            store.processes[name] = _spawn(command, env, log_dir / f"{name}.log")
        for name in (*SERVICES, "gateway"):
            _wait_ready(f"http://127.0.0.1:{ports[name]}", store, name)
        yield store
    finally:
        store.stop_all()
        with contextlib.suppress(Exception):
            asyncio.run(_drop_databases(postgres_url, list(databases.values())))
        with contextlib.suppress(Exception):
            asyncio.run(delete_bus(amqp_url, env["STORE_EXCHANGE"], env["STORE_QUEUE_PREFIX"]))
