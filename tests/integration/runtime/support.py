"""Helpers of the runtime's integration tests: a probe service, its tables and a TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import Column, Integer, String, Table, func, select

from libs.runtime.bus import EventBus
from libs.runtime.db import new_metadata
from libs.runtime.http import ServiceDirectory
from libs.runtime.runtime import Runtime, Shared
from libs.runtime.settings import RuntimeSettings


def probe_runtime(
    database_url: str, bus: EventBus, tmp_path: Path, name: str = "probe"
) -> tuple[Runtime, Table]:
    import fakeredis

    metadata = new_metadata()
    seen = Table(
        "seen", metadata, Column("id", Integer, primary_key=True), Column("user_id", String(50))
    )
    runtime = Runtime(
        name=name,
        settings=RuntimeSettings(data_dir=tmp_path, outbox_poll_interval_ms=50),
        metadata=metadata,
        database_url=database_url,
        migrations_dir=tmp_path,
        shared=Shared(
            bus=bus,
            fake_redis_server=fakeredis.FakeServer(),
            directory=ServiceDirectory(urls={}, timeout_s=1, service_token="t"),
        ),
    )
    return runtime, seen


async def create_tables(runtime: Runtime) -> None:
    async with runtime.engine.begin() as connection:
        await connection.run_sync(runtime.metadata.create_all)


async def rows(runtime: Runtime, table: Table) -> list[str]:
    async with runtime.sessions() as session:
        result = await session.execute(select(table.c.user_id).order_by(table.c.id))
        return list(result.scalars())


async def pending(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        query = select(func.count()).where(runtime.outbox.c.published_at.is_(None))
        return int((await session.execute(query)).scalar_one())


async def eventually(check, within_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def tcp_proxy(listen_port: int, target_port: int) -> AsyncIterator[None]:
    """Forward a local port to RabbitMQ: the broker 'comes back' when this starts, and every
    connection through it is cut when it ends."""
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        writers.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()
