"""Who is calling: a user (verified JWT), an anonymous shopper (signed cookie), or nobody."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

from gateway.settings import GatewaySettings
from libs.contracts.cart import MergeOut
from libs.contracts.common import Principal
from libs.runtime.problems import Unauthorized


@dataclass
class Caller:
    """The identity of one request, and what the response must do with the cookie."""

    user_id: str | None = None
    orgs: list[str] = field(default_factory=list)
    anonymous_id: str | None = None
    set_cookie: bool = False  # a new anonymous id to hand out
    clear_cookie: bool = False  # the anonymous id was merged into the user
    merge_result: MergeOut | None = None

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.user_id, anonymous_id=self.anonymous_id, orgs=self.orgs)

    def require_user(self) -> str:
        if not self.user_id:
            raise Unauthorized("This needs a logged-in user (Authorization: Bearer <token>).")
        return self.user_id

    def ensure_anonymous(self) -> None:
        """Give a caller without any identity an anonymous id (the cookie is set on response)."""
        if self.user_id is None and self.anonymous_id is None:
            self.anonymous_id = new_anonymous_id()
            self.set_cookie = True

    def require_any(self) -> None:
        if self.user_id is None and self.anonymous_id is None:
            raise Unauthorized("No identity: log in, or use the store first to get a cookie.")


def new_anonymous_id() -> str:
    return secrets.token_urlsafe(18)


# Algorithms by key type, never both families: a public key cannot be used as an HMAC secret.
HMAC_ALGORITHMS = ["HS256"]
PUBLIC_KEY_ALGORITHMS = ["RS256", "ES256"]


class TokenVerifier:
    """Verifies user tokens: HS256 with shared secrets, or RS256/ES256 with a PEM public key or
    an identity provider's JWKS (keys fetched by PyJWT's PyJWKClient and cached)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._jwks: jwt.PyJWKClient | None = None
        self._keys: list[Any]
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url,
                cache_keys=True,
                lifespan=settings.jwt_jwks_cache_s,
                timeout=settings.runtime.http_timeout_s,
            )
            self._keys = []
            self._algorithms = PUBLIC_KEY_ALGORITHMS
        elif settings.jwt_public_key:
            self._keys = [settings.jwt_public_key]
            self._algorithms = PUBLIC_KEY_ALGORITHMS
        else:
            self._keys = [settings.jwt_secret, *settings.jwt_secret_previous]
            self._algorithms = HMAC_ALGORITHMS
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer

    async def verify(self, token: str) -> tuple[str, list[str]]:
        """The user id (`sub`) and organizations (`orgs`) of a valid token."""
        try:
            keys = self._keys
            if self._jwks is not None:
                # PyJWKClient fetches over blocking HTTP when its cache misses.
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                keys = [signing_key.key]
            claims = self._decode(token, keys)
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(f"Invalid token: {exc}", code="invalid_token") from None
        orgs = claims.get("orgs") or []
        if not isinstance(orgs, list) or not all(isinstance(o, str) for o in orgs):
            raise Unauthorized(
                "Invalid token: `orgs` must be a list of strings", code="invalid_token"
            )
        subject = str(claims["sub"])
        if not subject or len(subject) > 200:
            raise Unauthorized("Invalid token: bad `sub`", code="invalid_token")
        return subject, orgs

    def _decode(self, token: str, keys: list[Any]) -> dict[str, Any]:
        for index, key in enumerate(keys):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=self._algorithms,
                    audience=self._audience,
                    issuer=self._issuer,
                    options={
                        "require": ["sub", "exp"],
                        "verify_aud": self._audience is not None,
                    },
                    leeway=30,
                )
                return claims
            except jwt.InvalidSignatureError:
                if index == len(keys) - 1:
                    raise
        raise jwt.InvalidSignatureError("no key")


_COOKIE_STATE = "anonymous_cookie_id"


class AnonymousCookie:
    """The signed, timestamped anonymous id. A forged, tampered or expired cookie reads as no
    cookie at all. Its age slides: the gateway re-issues it whenever the cart changes."""

    def __init__(self, settings: GatewaySettings) -> None:
        # itsdangerous signs with the last key and accepts any of them (rotation).
        keys = [*reversed(settings.cookie_secret_previous), settings.cookie_secret]
        self._serializer = URLSafeTimedSerializer(keys, salt="store.anonymous")
        self.name = settings.cookie_name
        self.secure = settings.effective_cookie_secure
        self.max_age_s = settings.cookie_max_age_s

    def dumps(self, anonymous_id: str) -> str:
        value: str = self._serializer.dumps(anonymous_id)
        return value

    def of_request(self, request: Request) -> str | None:
        """The anonymous id of this request's cookie, read once per request (the rate limits
        and the caller both need it; checking the signature costs more than the lookup)."""
        state = request.scope.setdefault("state", {})
        if _COOKIE_STATE not in state:
            state[_COOKIE_STATE] = self.loads(request.cookies.get(self.name))
        anonymous_id: str | None = state[_COOKIE_STATE]
        return anonymous_id

    def loads(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            anonymous_id = self._serializer.loads(value, max_age=self.max_age_s)
        except BadSignature:  # also SignatureExpired
            return None
        return anonymous_id if isinstance(anonymous_id, str) and anonymous_id else None


def issue_token(
    user_id: str, *, secret: str, orgs: list[str] | None = None, expires_in_s: int = 3600
) -> str:
    """A HS256 user token (for development: `store token USER`)."""
    import time

    now = int(time.time())
    claims = {"sub": user_id, "orgs": orgs or [], "iat": now, "exp": now + expires_in_s}
    return jwt.encode(claims, secret, algorithm="HS256")
