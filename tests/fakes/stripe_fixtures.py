"""Run the fake Stripe server on loopback and point the real ``stripe`` SDK at it.

Typical use in an async test::

    async with running_fake_stripe(webhook_url=f"{store_url}/api/payments/webhooks/stripe") as fake:
        client = fake.client()                      # a real stripe.StripeClient
        session = await client.v1.checkout.sessions.create_async({...})
        report = await fake.state.complete_checkout_session(session.id)
        assert [d.status_code for d in report.deliveries] == [200]

The server runs in the test's own event loop, so the SDK must not block that loop: use the
``*_async`` methods, or run sync calls in a worker thread (``asyncio.to_thread``). A plain sync
call from the loop would wait for a server that can no longer run.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from tests.fakes.stripe_server import (
    JSON,
    FakeStripe,
    RecordedRequest,
    create_fake_stripe_app,
    fake_stripe_of,
)

DEFAULT_API_KEY = "sk_test_fake_store"
_STARTUP_TIMEOUT = 5.0


def sign_webhook(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``, as Stripe computes it."""
    return stripe.WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp if timestamp is not None else int(time.time())
    )


def stripe_client_for(
    base_url: str,
    api_key: str = DEFAULT_API_KEY,
    *,
    http_client: stripe.HTTPClient | None = None,
    max_network_retries: int = 0,
) -> stripe.StripeClient:
    """A real SDK client whose API calls go to ``base_url`` instead of api.stripe.com.

    Sync methods use the SDK's default sync client (requests); ``*_async`` methods use its
    httpx-based async fallback, created here and bound to the event loop that first uses it.
    Pass ``http_client=stripe.HTTPXClient(allow_sync_methods=True)`` to use httpx for both.
    """
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url.rstrip("/")},
        http_client=http_client,
        # The fake never fails transiently; retries would only hide bugs and slow tests.
        max_network_retries=max_network_retries,
    )


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, *, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in the current event loop; yield its base URL."""
    # Binding the socket ourselves gives a free port with no pick-then-bind race.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await _wait_until_started(server, task)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _wait_until_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    deadline = asyncio.get_running_loop().time() + _STARTUP_TIMEOUT
    while not server.started:
        if task.done():
            task.result()  # surfaces the startup error
            raise RuntimeError("uvicorn stopped before it started")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("uvicorn did not start in time")
        await asyncio.sleep(0.005)


@dataclass
class RunningFakeStripe:
    """A fake Stripe account served on loopback, with helpers to drive and inspect it."""

    base_url: str
    api_key: str
    app: Starlette
    _clients: list[stripe.HTTPClient] = field(default_factory=list)
    _http: httpx.AsyncClient | None = None

    @property
    def state(self) -> FakeStripe:
        """The account itself: objects, events, request log, and the test actions."""
        return fake_stripe_of(self.app)

    def client(
        self, *, api_key: str | None = None, http_client: stripe.HTTPClient | None = None
    ) -> stripe.StripeClient:
        """A real SDK client pointed at this fake; its connections close when the fake stops.

        By default the same stack the SDK builds for itself: requests for sync calls, httpx
        for ``*_async`` calls, made explicit here only so that it can be closed.
        """
        if http_client is None:
            http_client = stripe.RequestsClient(async_fallback_client=stripe.HTTPXClient())
        self._clients.append(http_client)
        return stripe_client_for(self.base_url, api_key or self.api_key, http_client=http_client)

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """Where events go from now on (the receiver often starts after the fake)."""
        self.state.webhooks.url = url
        if secret is not None:
            self.state.webhooks.secret = secret

    @property
    def webhook_secret(self) -> str:
        return self.state.webhooks.secret

    def requests(
        self, *, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        """The /v1 requests received, oldest first, optionally filtered."""
        return [
            r
            for r in self.state.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    def events(self, event_type: str | None = None) -> list[JSON]:
        """The events emitted, oldest first, optionally of one type."""
        return [e for e in self.state.events if event_type is None or e["type"] == event_type]

    def object(self, object_id: str) -> JSON:
        """The stored object with this id, as the fake holds it now."""
        return self.state.objects[object_id]

    async def action(self, path: str, **query: Any) -> JSON:
        """POST ``/_test/{path}`` over HTTP, as a black-box test would; returns the report."""
        response = await self.http().post(f"/_test/{path.lstrip('/')}", params=query)
        response.raise_for_status()
        return dict(response.json())

    def http(self) -> httpx.AsyncClient:
        """A plain HTTP client on ``base_url`` (no auth header), closed when the fake stops."""
        if self._http is None:
            # Plain http on loopback: skip the environment's proxies and the CA bundle load.
            self._http = httpx.AsyncClient(base_url=self.base_url, trust_env=False, verify=False)
        return self._http

    async def wait_for_deliveries(self) -> None:
        """Wait for webhooks sent in the background after API calls."""
        await self.state.webhooks.drain()

    async def _close_clients(self) -> None:
        for http_client in self._clients:
            await http_client.close_async()
            http_client.close()
        if self._http is not None:
            await self._http.aclose()


@contextlib.asynccontextmanager
async def running_fake_stripe(
    *,
    webhook_url: str | None = None,
    webhook_secret: str = "whsec_test",
    api_key: str = DEFAULT_API_KEY,
    **app_options: Any,
) -> AsyncIterator[RunningFakeStripe]:
    """Start a fresh fake Stripe on 127.0.0.1 and a free port; stop it on exit.

    ``app_options`` go to ``create_fake_stripe_app`` (``api_key_prefix``, ``clock``...).
    """
    app = create_fake_stripe_app(
        webhook_url=webhook_url, webhook_secret=webhook_secret, **app_options
    )
    async with serve_asgi(app) as base_url:
        fake = RunningFakeStripe(base_url=base_url, api_key=api_key, app=app)
        try:
            yield fake
        finally:
            await fake._close_clients()
