"""Idempotency keys, as Stripe does them, for the store API's POSTs that change things.

A client sends `Idempotency-Key: <random>` on `POST /api/store/cart/lines`, `/checkout`,
`/orders/{id}/pay` and `/api/payments/billing`. The first response (status and body) is kept
per caller and key for 24 hours and replayed for a retry of the same request, marked
`Idempotent-Replayed: true`. The same key with another request (method, path or body) is 422
`idempotency_key_reused`; a retry while the first is still running is 409
`idempotency_key_in_use`. Only a success is kept: a refusal (4xx, e.g. a body that did not
validate) changed nothing, and a failure (5xx) or a request that dies should be retried, so the
key frees itself (at once, or after the in-flight lock expires when the gateway itself died)
and the retry runs again — reaching the services' own guards (one open payment per order, 409
when paid).

Storage is Redis: the real server in the distributed mode, the in-process substitute in the
embedded mode. A caller without any identity yet (no user token, no anonymous cookie) has
nothing to scope a key to; its key is ignored — a retry would be a new anonymous shopper anyway.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.deps import CurrentAdmin, CurrentCaller
from libs.runtime.problems import Conflict, InvalidInput

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_STATE_KEY = "idempotency_claim"
_PREFIX = "store:idempotency:"


class IdempotencyKeyInUse(Conflict):
    code, title = "idempotency_key_in_use", "A request with this Idempotency-Key is running"


class IdempotencyKeyReused(InvalidInput):
    code, title = "idempotency_key_reused", "This Idempotency-Key was used for another request"


class _Replay(Exception):
    """Raised by the dependency to answer with the stored response instead of running."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = stored


@dataclass(frozen=True)
class IdempotencyStore:
    """Responses per caller and key in Redis: `running` while the first request runs, then
    `done` with its status and body."""

    redis: Any
    ttl_s: int
    lock_s: int

    async def claim(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        """None: this request runs (the key is now in flight); else what is stored for it."""
        running = json.dumps({"state": "running", "fingerprint": fingerprint})
        if await self.redis.set(key, running, nx=True, ex=self.lock_s):
            return None
        raw = await self.redis.get(key)
        if raw is None:  # expired between the two calls: try once more
            if await self.redis.set(key, running, nx=True, ex=self.lock_s):
                return None
            raw = await self.redis.get(key) or running
        stored: dict[str, Any] = json.loads(raw)
        return stored

    async def save(self, key: str, fingerprint: str, status: int, body: bytes, media: str) -> None:
        done = {
            "state": "done",
            "fingerprint": fingerprint,
            "status": status,
            "body": body.decode("utf-8", "replace"),
            "media_type": media,
        }
        await self.redis.set(key, json.dumps(done), ex=self.ttl_s)

    async def release(self, key: str) -> None:
        await self.redis.delete(key)

    async def aclose(self) -> None:
        await self.redis.aclose()


@dataclass
class _Claim:
    store: IdempotencyStore
    key: str
    fingerprint: str


KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="A unique key (e.g. a UUID) that makes a retry of this request safe: "
        "the first response is replayed for 24 h. The same key with another body is 422, "
        "a retry while the first runs is 409.",
    ),
]


async def idempotency_key(request: Request, caller: CurrentCaller, key: KeyHeader = None) -> None:
    """Replay, refuse or claim the shopper's Idempotency-Key for this request."""
    owner = caller.principal.owner
    if key is None or owner is None:
        return
    await _claim(request, f"{owner.kind}:{owner.id}", key)


async def admin_idempotency_key(
    request: Request, admin: CurrentAdmin, key: KeyHeader = None
) -> None:
    """Replay, refuse or claim an operator's Idempotency-Key: keyed by the operator, never by a
    shopper's cookie (an admin route never identifies, let alone merges, a shopper)."""
    if key is None:
        return
    await _claim(request, f"admin:{admin.actor}", key)


async def _claim(request: Request, owner: str, key: str) -> None:
    store: IdempotencyStore = request.app.state.idempotency
    body = await request.body()
    digest = hashlib.sha256(key.encode()).hexdigest()
    storage_key = f"{_PREFIX}{owner}:{digest}"
    fingerprint = hashlib.sha256(
        b"\n".join([request.method.encode(), request.url.path.encode(), body])
    ).hexdigest()
    stored = await store.claim(storage_key, fingerprint)
    if stored is None:
        request.scope.setdefault("state", {})[_STATE_KEY] = _Claim(store, storage_key, fingerprint)
        return
    if stored.get("fingerprint") != fingerprint:
        raise IdempotencyKeyReused(
            f"{HEADER} {key!r} was first used with another request; use a new key."
        )
    if stored.get("state") != "done":
        raise IdempotencyKeyInUse(f"The request with {HEADER} {key!r} is still running; retry.")
    raise _Replay(stored)


# Add to a route: `dependencies=[Idempotent]` (store routes) or `[AdminIdempotent]` (admin).
Idempotent = Depends(idempotency_key)
AdminIdempotent = Depends(admin_idempotency_key)


class IdempotencyMiddleware:
    """Keeps the response of a request whose key was claimed, or frees the key on failure."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status = 0
        media = "application/json"
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, media
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        media = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            claim: _Claim | None = scope.get("state", {}).pop(_STATE_KEY, None)
            if claim is not None:
                await _settle(claim, status, b"".join(chunks), media)


async def _settle(claim: _Claim, status: int, body: bytes, media: str) -> None:
    try:
        if 200 <= status < 300:
            await claim.store.save(claim.key, claim.fingerprint, status, body, media)
        else:  # refused or failed, nothing done: the key runs again next time
            await claim.store.release(claim.key)
    except Exception as exc:  # Redis down: the answer is already sent; the key lock expires
        log.warning("idempotency.store_failed", error=repr(exc))


async def _replay(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Replay)
    stored = exc.stored
    return Response(
        content=stored["body"].encode(),
        status_code=int(stored["status"]),
        media_type=stored.get("media_type") or "application/json",
        headers={REPLAYED_HEADER: "true"},
    )


def install_idempotency(app: FastAPI, *, redis: Any, ttl_s: int, lock_s: int) -> IdempotencyStore:
    """Enable `Idempotent` routes on this app; close the returned store on shutdown."""
    store = IdempotencyStore(redis=redis, ttl_s=ttl_s, lock_s=lock_s)
    app.state.idempotency = store
    app.add_middleware(IdempotencyMiddleware)
    app.add_exception_handler(_Replay, _replay)
    return store
