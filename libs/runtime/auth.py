"""Who may call a service, and on whose behalf: the one place services check both.

Every service route except `/healthz`, `/readyz`, `/metrics` (and the catalog's public media
files) needs the shared service credential in `x-service-token`; `create_service_app` adds that
check to every router it mounts. The caller's principal travels in `x-store-principal` as a
short-lived HS256 token signed with the service credential: a forged, edited or expired
(replayed later) principal is refused with 401.
Rotation: a token signed with, or a credential equal to, a former service token (listed in
`STORE_SERVICE_TOKEN_PREVIOUS`) is still accepted.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Sequence
from typing import Annotated

import jwt
from fastapi import Depends, Header, Request
from pydantic import ValidationError

from libs.contracts.common import PRINCIPAL_HEADER, Principal
from libs.runtime.problems import Unauthorized

SERVICE_TOKEN_HEADER = "x-service-token"
PRINCIPAL_TTL_S = 30
_AUDIENCE = "store.services"
_ALGORITHM = "HS256"
_CLOCK_SKEW_S = 5  # between the gateway's and a service's host clocks


def sign_principal(
    principal: Principal,
    *,
    key: str,
    ttl_s: int = PRINCIPAL_TTL_S,
    now: float | None = None,
) -> str:
    """The principal as a token services accept for `ttl_s` seconds."""
    issued = int(time.time() if now is None else now)
    claims = {
        "principal": principal.model_dump(mode="json"),
        "aud": _AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


# Tokens already verified, until they expire: the gateway reuses a principal's token for a
# while (libs/runtime/http.py), and checking the signature again would cost more than the
# request's own work. Keyed by the token and the accepted keys, so a key that is no longer
# accepted stops its tokens at once; bounded by clearing when full.
_VERIFIED_MAX = 4096
_verified: dict[tuple[str, tuple[str, ...]], tuple[Principal, float]] = {}


def verify_principal(token: str, *, keys: Sequence[str]) -> Principal:
    """The principal of an unexpired token signed with one of `keys`, else 401."""
    cache_key = (token, tuple(keys))
    hit = _verified.get(cache_key)
    if hit is not None:
        principal, expires = hit
        if time.time() <= expires + _CLOCK_SKEW_S:
            return principal
        del _verified[cache_key]
    principal, expires = _verify(token, keys)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[cache_key] = (principal, expires)
    return principal


def _verify(token: str, keys: Sequence[str]) -> tuple[Principal, float]:
    claims = None
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["exp", "iat", "jti", "aud", "principal"]},
                leeway=_CLOCK_SKEW_S,
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise _invalid_principal(str(exc)) from None
    if claims is None:
        raise _invalid_principal("bad signature")
    try:
        return Principal.model_validate(claims["principal"]), float(claims["exp"])
    except ValidationError:
        raise _invalid_principal("not a principal") from None


def _invalid_principal(reason: str) -> Unauthorized:
    return Unauthorized(
        f"The {PRINCIPAL_HEADER} header is not a valid signed principal ({reason}).",
        code="invalid_principal",
    )


def credential_accepted(token: str | None, accepted: Sequence[str]) -> bool:
    """True when `token` equals one of the accepted service tokens (compared in constant time)."""
    if not token:
        return False
    given = token.encode()
    return any(hmac.compare_digest(given, expected.encode()) for expected in accepted)


async def require_service_token(
    request: Request,
    token: Annotated[
        str | None, Header(alias=SERVICE_TOKEN_HEADER, include_in_schema=False)
    ] = None,
) -> None:
    """Every call comes from the gateway or another service, with the shared credential."""
    if not credential_accepted(token, request.app.state.runtime.settings.service_tokens):
        raise Unauthorized(
            f"The {SERVICE_TOKEN_HEADER} header is missing or wrong.", code="invalid_service_token"
        )


async def principal_or_none(
    request: Request,
    header: Annotated[str | None, Header(alias=PRINCIPAL_HEADER, include_in_schema=False)] = None,
) -> Principal | None:
    """The caller as the gateway signed it; None without the header."""
    if not header:
        return None
    return verify_principal(header, keys=request.app.state.runtime.settings.service_tokens)


async def require_principal(
    principal: Annotated[Principal | None, Depends(principal_or_none)],
) -> Principal:
    """The caller, who must be someone: a user or an anonymous shopper."""
    if principal is None or principal.owner is None:
        raise Unauthorized(
            f"The {PRINCIPAL_HEADER} header names nobody.", code="principal_required"
        )
    return principal
