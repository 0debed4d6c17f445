"""Who is calling: a user (verified JWT), an anonymous shopper (signed cookie), or nobody."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from gateway.settings import GatewaySettings
from libs.contracts.cart import MergeOut
from libs.contracts.common import Principal
from libs.runtime.problems import Unauthorized


class AnonymousIdentityMerged(Unauthorized):
    code, title = "anonymous_identity_merged", "This anonymous identity was merged at login"


@dataclass
class Caller:
    """The identity of one request, and what the response must do with the cookie."""

    user_id: str | None = None
    orgs: list[str] = field(default_factory=list)
    anonymous_id: str | None = None
    set_cookie: bool = False  # a new anonymous id to hand out
    clear_cookie: bool = False  # the anonymous id was merged into the user
    merge_result: MergeOut | None = None
    # The request carried a cookie whose anonymous id was merged into a user: it counts as no
    # identity, and what needs one says why in its 401.
    merged_cookie: bool = False

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
            if self.merged_cookie:
                raise AnonymousIdentityMerged(
                    "This shopper's cart and orders moved to a user account at login; "
                    "log in to continue."
                )
            raise Unauthorized("No identity: log in, or use the store first to get a cookie.")


def new_anonymous_id() -> str:
    return secrets.token_urlsafe(18)


ADMIN_ROLE = "store:admin"


@dataclass(frozen=True)
class TokenClaims:
    """The identity a verified token carries. `roles` come from the identity provider (the
    `roles` claim); `store:admin` opens the admin API."""

    user_id: str
    orgs: list[str]
    roles: list[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


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
        claims = await self.verify_claims(token)
        return claims.user_id, claims.orgs

    async def verify_claims(self, token: str) -> TokenClaims:
        """What a valid token says: its user, organizations and roles."""
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
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized(
                "Invalid token: `roles` must be a list of strings", code="invalid_token"
            )
        subject = str(claims["sub"])
        if not subject or len(subject) > 200:
            raise Unauthorized("Invalid token: bad `sub`", code="invalid_token")
        return TokenClaims(user_id=subject, orgs=orgs, roles=roles)

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
# A Secure cookie with this prefix is host-only, Path=/ and Secure, which browsers enforce: a
# sibling subdomain cannot set or overwrite it (no cookie fixation from `evil.shop.example`).
HOST_PREFIX = "__Host-"


class AnonymousCookie:
    """The signed, timestamped anonymous id. A forged, tampered or expired cookie reads as no
    cookie at all. Its age slides: the gateway re-issues it whenever the cart changes.

    The one place that names the cookie and writes its attributes: `__Host-<name>` when it is
    Secure (HTTPS), the plain name for a plain-HTTP development run. Only the current name is
    read, so a plain-named cookie planted beside a Secure one is ignored."""

    def __init__(self, settings: GatewaySettings) -> None:
        # itsdangerous signs with the last key and accepts any of them (rotation).
        keys = [*reversed(settings.cookie_secret_previous), settings.cookie_secret]
        self._serializer = URLSafeTimedSerializer(keys, salt="store.anonymous")
        self.secure = settings.effective_cookie_secure
        base = settings.cookie_name.removeprefix(HOST_PREFIX)
        self.name = HOST_PREFIX + base if self.secure else base
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

    def set_header(self, anonymous_id: str) -> str:
        """The `Set-Cookie` value that hands out (or renews) `anonymous_id`."""
        response = Response()
        response.set_cookie(
            self.name,
            self.dumps(anonymous_id),
            max_age=self.max_age_s,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",  # and no Domain: host-only, as the `__Host-` prefix requires
        )
        return response.headers["set-cookie"]

    def clear_header(self) -> str:
        """The `Set-Cookie` value that removes the cookie."""
        response = Response()
        response.delete_cookie(
            self.name, httponly=True, samesite="lax", secure=self.secure, path="/"
        )
        return response.headers["set-cookie"]


_MERGED_PREFIX = "store:identity:merged:"
_MERGED_STATE = "anonymous_id_merged"
# Kept a day past the cookie's max age: enough for clocks of gateway replicas that disagree.
_MERGED_MARGIN_S = 24 * 3600


@dataclass(frozen=True)
class MergedAnonymousIds:
    """Anonymous ids merged into a user, kept at least as long as a cookie lives: a copy of the
    cookie taken before the merge is dead (it reads as no identity). Redis in the distributed
    mode (every gateway replica sees it), the in-process substitute in the embedded mode."""

    redis: Any
    ttl_s: int

    @classmethod
    def for_cookie(cls, redis: Any, cookie: AnonymousCookie) -> MergedAnonymousIds:
        return cls(redis=redis, ttl_s=cookie.max_age_s + _MERGED_MARGIN_S)

    async def record(self, anonymous_id: str) -> None:
        await self.redis.set(_MERGED_PREFIX + anonymous_id, b"1", ex=self.ttl_s)

    async def is_merged(self, anonymous_id: str) -> bool:
        return bool(await self.redis.exists(_MERGED_PREFIX + anonymous_id))

    async def is_merged_for_request(self, request: Request, anonymous_id: str) -> bool:
        """`is_merged`, asked once per request (the rate limits and the caller both need it)."""
        state = request.scope.setdefault("state", {})
        key = (_MERGED_STATE, anonymous_id)
        if key not in state:
            state[key] = await self.is_merged(anonymous_id)
        merged: bool = state[key]
        return merged


def issue_token(
    user_id: str,
    *,
    secret: str,
    orgs: list[str] | None = None,
    roles: list[str] | None = None,
    expires_in_s: int = 3600,
) -> str:
    """A HS256 user token (for development: `store token USER [--role ROLE]`)."""
    import time

    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "orgs": orgs or [],
        "iat": now,
        "exp": now + expires_in_s,
    }
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, secret, algorithm="HS256")
