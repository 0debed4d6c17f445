"""Who is calling: a user (verified JWT), an anonymous shopper (signed cookie), or nobody."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import jwt
from itsdangerous import BadSignature, URLSafeSerializer

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


class TokenVerifier:
    """Verifies user tokens: HS256 with a shared secret, or RS256 with a public key."""

    def __init__(self, settings: GatewaySettings) -> None:
        if settings.jwt_public_key:
            self._key: str = settings.jwt_public_key
            self._algorithms = ["RS256"]
        else:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer

    def verify(self, token: str) -> tuple[str, list[str]]:
        """The user id (`sub`) and organizations (`orgs`) of a valid token."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
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


class AnonymousCookie:
    """The signed anonymous id. A forged or tampered cookie reads as no cookie at all."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._serializer = URLSafeSerializer(settings.cookie_secret, salt="store.anonymous")
        self.name = settings.cookie_name
        self.secure = settings.cookie_secure
        self.max_age_s = settings.cookie_max_age_s

    def dumps(self, anonymous_id: str) -> str:
        return self._serializer.dumps(anonymous_id)

    def loads(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            anonymous_id = self._serializer.loads(value)
        except BadSignature:
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
