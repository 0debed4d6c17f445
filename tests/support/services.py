"""Headers a service accepts: the service credential and, optionally, a signed principal.

The one way tests talk to a service app as the gateway does (libs/runtime/auth.py checks them).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from libs.contracts.common import PRINCIPAL_HEADER, Principal
from libs.runtime.auth import SERVICE_TOKEN_HEADER, sign_principal
from libs.runtime.settings import DEV_SERVICE_TOKEN

# A service token the distributed mode accepts, for tests that run services over a real broker.
TEST_SERVICE_TOKEN = "test-service-token-of-at-least-32-bytes"


def service_headers(
    principal: Principal | None = None,
    *,
    token: str = DEV_SERVICE_TOKEN,
    credential: bool = True,
    signing_key: str | None = None,
    issued_s_ago: float = 0,
) -> dict[str, str]:
    """The service credential `token` (unless `credential=False`), plus `principal` signed
    with it (or with `signing_key`), issued `issued_s_ago` seconds ago."""
    headers = {SERVICE_TOKEN_HEADER: token} if credential else {}
    if principal is not None:
        headers[PRINCIPAL_HEADER] = sign_principal(
            principal, key=signing_key or token, now=time.time() - issued_s_ago
        )
    return headers


async def send_without_credential(
    http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send a request with no service credential, whatever headers `http` adds by default."""
    request = http.build_request(method, url, **kwargs)
    del request.headers[SERVICE_TOKEN_HEADER]
    return await http.send(request)


def behind_gateway(app: Any, token: str = DEV_SERVICE_TOKEN) -> Any:
    """`app` as the gateway's forwarding reaches it: every request gains the credential (for a
    provider's webhooks sent straight at a service in tests)."""

    async def forwarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != SERVICE_TOKEN_HEADER.encode()]
            scope = {
                **scope,
                "headers": [*headers, (SERVICE_TOKEN_HEADER.encode(), token.encode())],
            }
        await app(scope, receive, send)

    return forwarded


def with_edited_claims(token: str, **claims: Any) -> str:
    """A JWT with its claims changed and its original signature kept: a forgery to refuse."""
    import base64
    import json

    head, body, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    edited = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).rstrip(b"=")
    return f"{head}.{edited.decode()}.{signature}"
