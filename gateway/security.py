"""The gateway's security controls, each in one place: which media paths and payments pages may
be forwarded, the return URLs a payment may send a shopper to, and request-body limits (rate
limits are in `gateway/rate_limits.py`, client addresses in `gateway/forwarded.py`).
docs/security.md says what each one guards against and which setting tunes it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import structlog
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.origin import normalized_host, valid_port
from gateway.settings import GatewaySettings
from libs.contracts.store import CheckoutOut
from libs.runtime.problems import InvalidInput, NotFound, ProblemError, send_problem

log = structlog.get_logger(__name__)

# --- forwarded paths: fixed templates, checked segments -------------------------------------

# A media file is `name.ext` in at most a few folders; names start with a letter or digit.
_MEDIA_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_MEDIA_MAX_DEPTH = 4
# Ids in forwarded payments paths: attempt and subscription ids are uuids or provider ids.
_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def checked_id(value: str) -> str:
    """An id that goes into a forwarded path: letters, digits, `-` and `_` only, else 404."""
    if not _ID.fullmatch(value):
        raise NotFound("No such payments page.")
    return value


def checked_media_path(request: Request, path: str) -> str:
    """The media file a `/media/...` request names, or 404: no `..`, no encoded dots or slashes,
    no backslash, no absolute or hidden path, nothing but plain file names in folders."""
    raw = request.scope.get("raw_path", b"").decode("latin-1")
    segments = path.split("/")
    if (
        "%" in raw
        or "\\" in path
        or len(segments) > _MEDIA_MAX_DEPTH
        or not all(_MEDIA_SEGMENT.fullmatch(segment) for segment in segments)
        or ".." in path
    ):
        raise NotFound("No such media file.", code="media_not_found")
    return path


# --- return URLs ------------------------------------------------------------------------------


def check_return_urls(settings: GatewaySettings, *urls: str) -> None:
    """A payment may send the shopper back only to absolute http(s) URLs on the public URL's
    host or a host of `GATEWAY_RETURN_URL_HOSTS`, with no user info and a valid port; a
    non-ASCII host is compared IDNA-encoded, so a homograph is another host. Else 422
    `invalid_return_url`."""
    allowed = settings.return_hosts
    for url in urls:
        try:
            parts = urlsplit(url)
            host = normalized_host(parts.hostname or "")
        except ValueError:
            parts, host = None, None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.password is not None
            or "@" in parts.netloc
            or not valid_port(parts)
            or any(ch.isspace() or ord(ch) < 32 for ch in url)
            or "\\" in url
        ):
            raise InvalidInput(
                "Return URLs (success_url, cancel_url, return_url) must be absolute http(s) URLs "
                "with a valid port.",
                code="invalid_return_url",
            )
        if host is None or host not in allowed:
            raise InvalidInput(
                f"Return URLs may only point to: {', '.join(sorted(allowed))}.",
                code="invalid_return_url",
            )


def public_links(out: CheckoutOut, settings: GatewaySettings) -> CheckoutOut:
    """Make a checkout page link absolute on the public URL (`GATEWAY_PUBLIC_URL`), whatever
    address or `Host` the request came with."""
    url = out.payment.checkout_url
    if url is None or not url.startswith("/") or url.startswith("//"):
        return out
    payment = out.payment.model_copy(update={"checkout_url": settings.public_origin.url + url})
    return out.model_copy(update={"payment": payment})


# --- request-body limit -----------------------------------------------------------------------


class BodyLimitMiddleware:
    """Refuses a request body over its limit with a 413 problem, counting bytes as they
    arrive: a declared Content-Length over the limit is refused before reading, a longer
    stream is cut off at the limit, and nothing beyond it reaches the app (the server drops
    the rest so the client can read the answer; the edge proxy caps how much that may be)."""

    def __init__(self, app: ASGIApp, *, default_bytes: int, webhook_bytes: int) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.webhook_bytes = webhook_bytes

    def limit_for(self, path: str) -> int:
        return (
            self.webhook_bytes if path.startswith("/api/payments/webhooks/") else self.default_bytes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_too_large(scope, send, limit)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await _send_too_large(scope, send, limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_too_large(scope, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Payload too large"


async def _send_too_large(scope: Scope, send: Send, limit: int) -> None:
    detail = f"The request body is larger than {limit} bytes."
    await send_problem(scope, send, PayloadTooLarge(detail))
