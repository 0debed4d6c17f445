"""An open-loop load generator: requests leave at fixed times, whatever the answers.

wrk is closed-loop: a connection sends its next request only when the previous one is
answered, so when the shop slows down, wrk slows down with it and the requests it never sent
are never timed (coordinated omission). Here request `i` is due at `start + i / rate`, and
its latency is counted from that moment: if the shop (or this driver) falls behind, the
waiting shows in the latency. A request that finds every connection busy waits for one, and
that wait counts too.

One asyncio loop with aiohttp's keep-alive pool (the client the store itself uses between
services); at a few hundred requests a second it needs a fraction of one core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.checkout import Latencies, on_schedule
from bench.wrk import Measure


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] | None = None
    json: Any = None


async def drive(
    base_url: str,
    requests: Callable[[int], Request],
    *,
    rate: float,
    duration_s: float,
    connections: int = 64,
    timeout_s: float = 5.0,
) -> Measure:
    """Send `requests(i)` at `rate` per second for `duration_s`; latencies from schedule."""
    count = max(1, round(rate * duration_s))
    latency = Latencies()
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(
        base_url, connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:

        async def one(due: float, request: Request) -> None:
            try:
                async with http.request(
                    request.method, request.path, headers=request.headers, json=request.json
                ) as response:
                    await response.read()
                    if response.status >= 400:
                        errors.append(f"{request.method} {request.path} → {response.status}")
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(repr(exc))
                return
            latency.values_ms.append((time.monotonic() - due) * 1000)

        seconds = await on_schedule(count, rate, lambda i, due: one(due, requests(i)), lead_s=0.05)
    return Measure(
        requests=len(latency.values_ms),
        seconds=seconds,
        p50_ms=latency.percentile(50),
        p99_ms=latency.percentile(99),
        errors=len(errors),
        error_detail=f"{len(errors)} failed: {errors[0]}" if errors else "",
    )
