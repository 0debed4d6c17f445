"""Gateway settings (`GATEWAY_*`). Defaults are the embedded mode's; secrets have no production
default: outside the embedded mode the gateway refuses to start with dev or short ones."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.origin import LOOPBACK_NAMES, PublicOrigin, normalized_host
from libs.runtime.settings import RuntimeSettings, require_strong_secret, split_list

# Where `store dev` serves by default; its `--host`/`--port` set GATEWAY_PUBLIC_URL to match.
EMBEDDED_PUBLIC_URL = "http://127.0.0.1:8000"
DEV_JWT_SECRET = "dev-jwt-secret-not-for-production"
DEV_COOKIE_SECRET = "dev-cookie-secret-not-for-production"
KIB = 1024
# Settings that were replaced; a deployment still setting them is told what to set instead.
RENAMED = {
    "GATEWAY_RATE_LIMIT_PER_ADDRESS": "set GATEWAY_RATE_LIMIT_SESSIONS_PER_ADDRESS, "
    "GATEWAY_RATE_LIMIT_BILLING_PER_ADDRESS and GATEWAY_RATE_LIMIT_NEW_CARTS_PER_ADDRESS",
    "GATEWAY_RATE_LIMIT_PER_IDENTITY": "set GATEWAY_RATE_LIMIT_SESSIONS_PER_IDENTITY, "
    "GATEWAY_RATE_LIMIT_BILLING_PER_IDENTITY and GATEWAY_RATE_LIMIT_CART_WRITES_PER_IDENTITY",
}


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    jwt_secret: str = Field(
        DEV_JWT_SECRET,
        description="HS256 secret that signs user tokens; at least 32 bytes outside the "
        "embedded mode.",
    )
    jwt_secret_previous: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Former HS256 secrets still accepted during a rotation (comma-separated).",
    )
    jwt_public_key: str | None = Field(
        None,
        description="PEM public key (RSA or EC); when set, tokens are verified with RS256/ES256 "
        "and never HS256.",
    )
    jwt_jwks_url: str | None = Field(
        None,
        description="JWKS URL of an identity provider; when set, tokens are verified with its "
        "RS256/ES256 keys (cached) and never HS256.",
    )
    jwt_jwks_cache_s: int = Field(300, ge=1, description="How long fetched JWKS keys are kept.")
    jwt_audience: str | None = Field(None, description="Required `aud` claim, if any.")
    jwt_issuer: str | None = Field(None, description="Required `iss` claim, if any.")
    cookie_secret: str = Field(
        DEV_COOKIE_SECRET,
        description="Key that signs the anonymous cookie; at least 32 bytes outside the "
        "embedded mode.",
    )
    cookie_secret_previous: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Former cookie keys still accepted during a rotation (comma-separated).",
    )
    cookie_name: str = Field(
        "store_anon",
        description="Name of the anonymous cookie; a Secure cookie carries the `__Host-` "
        "prefix (`__Host-store_anon`), so no sibling subdomain can set it.",
    )
    cookie_secure: bool | None = Field(
        None,
        description="Mark the anonymous cookie Secure (HTTPS only). Default: true in the "
        "distributed mode, false in the embedded mode; `false` is the opt-out for plain-HTTP "
        "runs.",
    )
    cookie_max_age_s: int = Field(
        30 * 24 * 3600,
        ge=60,
        description="Lifetime of the anonymous cookie; it slides: each cart change renews it.",
    )
    public_url: str | None = Field(
        None,
        description="The address shoppers reach the gateway at, `http(s)://host[:port]` (e.g. "
        "`https://shop.example`): checkout links and redirects are built on it, and a request "
        "for another host is refused 400. Required in the distributed mode; default in the "
        "embedded mode: the address `store dev` serves on.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More hosts the gateway answers besides the public URL's (comma-separated), "
        "e.g. the internal name a server-side front end calls it by; links still use the "
        "public URL. `/healthz`, `/readyz` and `/metrics` answer any host.",
    )
    return_url_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More hosts a payment's success_url/cancel_url may point to besides the "
        "public URL's (comma-separated); non-ASCII names are compared IDNA-encoded.",
    )
    body_limit_bytes: int = Field(
        1024 * KIB, ge=1024, description="Largest accepted request body (JSON APIs)."
    )
    webhook_body_limit_bytes: int = Field(
        256 * KIB, ge=1024, description="Largest accepted payment provider webhook body."
    )
    rate_limit_sessions_per_address: str = Field(
        "30/minute",
        description="Payment sessions (checkout, pay, the dev provider's pay) one client address "
        "may open (`limits` notation, e.g. `30/minute`); the card-testing defence.",
    )
    rate_limit_sessions_per_identity: str = Field(
        "10/minute", description="Payment sessions one user or anonymous shopper may open."
    )
    rate_limit_billing_per_address: str = Field(
        "20/minute", description="Billing profiles one client address may create."
    )
    rate_limit_billing_per_identity: str = Field(
        "10/minute", description="Billing profiles one user or anonymous shopper may create."
    )
    rate_limit_new_carts_per_address: str = Field(
        "60/minute",
        description="New carts one client address may start (cart writes of a caller with no "
        "cookie or token yet).",
    )
    rate_limit_cart_writes_per_identity: str = Field(
        "600/minute",
        description="Cart writes (add, change, remove) of one shopper: far above human use.",
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="FORWARDED_ALLOW_IPS",
        description="Proxies (addresses or CIDR networks, comma-separated) whose `Forwarded` or "
        "`X-Forwarded-For`/`-Proto` give the client's address and scheme; empty: none, the "
        "peer is the client. `*` trusts every peer: only where nothing else can reach the "
        "gateway.",
    )
    frontend_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Credentials of server-side front ends (comma-separated, 32+ bytes each) "
        "that may pass each shopper's address in `X-Store-Shopper-Address` with "
        "`X-Store-Frontend-Token`; empty: the header is ignored.",
    )
    product_cache_ttl_s: float = Field(
        5.0, ge=0, description="Seconds the gateway keeps product pages (0: no cache)."
    )
    product_cache_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=0,
        description="Bytes of product-page bodies the gateway keeps at most, for the listing "
        "and again for search pages (apart, so searches never evict the listing); the least "
        "recently used go first.",
    )
    default_locale: str = Field(
        "en", description="Locale when neither ?locale= nor Accept-Language."
    )
    idempotency_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long a response is kept for its Idempotency-Key."
    )
    idempotency_lock_s: int = Field(
        60,
        ge=1,
        description="How long a key stays in flight when its request never finishes (the "
        "gateway died); then a retry runs again. Keep it above the slowest request.",
    )
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)

    _split_lists = field_validator(
        "jwt_secret_previous",
        "cookie_secret_previous",
        "allowed_hosts",
        "return_url_hosts",
        "forwarded_allow_ips",
        "frontend_tokens",
        mode="before",
    )(split_list)

    @field_validator("allowed_hosts", "return_url_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        normalized = []
        for host in hosts:
            name = normalized_host(host)
            if name is None:
                raise ValueError(f"{host!r} is not a host name")
            normalized.append(name)
        return normalized

    @field_validator("public_url")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return PublicOrigin.parse(value).url  # ValueError says what it must be

    @field_validator(
        "rate_limit_sessions_per_address",
        "rate_limit_sessions_per_identity",
        "rate_limit_billing_per_address",
        "rate_limit_billing_per_identity",
        "rate_limit_new_carts_per_address",
        "rate_limit_cart_writes_per_identity",
    )
    @classmethod
    def _a_rate(cls, value: str) -> str:
        from limits import parse

        parse(value)  # ValueError names the bad notation
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            if value != "*":
                ipaddress.ip_network(value, strict=False)  # ValueError names the bad entry
        return values

    @field_validator("frontend_tokens")
    @classmethod
    def _strong_tokens(cls, values: list[str]) -> list[str]:
        for value in values:
            require_strong_secret("GATEWAY_FRONTEND_TOKENS", value, "")
        return values

    @model_validator(mode="before")
    @classmethod
    def _no_renamed_limits(cls, data: Any) -> Any:
        for old in RENAMED:
            if old in os.environ:
                raise ValueError(f"{old} is no longer read: {RENAMED[old]}")
        return data

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Self:
        if self.jwt_public_key and self.jwt_jwks_url:
            raise ValueError("set GATEWAY_JWT_PUBLIC_KEY or GATEWAY_JWT_JWKS_URL, not both")
        if self.runtime.embedded:
            return self
        if self.jwt_public_key is None and self.jwt_jwks_url is None:
            require_strong_secret("GATEWAY_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET)
        require_strong_secret("GATEWAY_COOKIE_SECRET", self.cookie_secret, DEV_COOKIE_SECRET)
        if self.public_url is None:
            raise ValueError(
                "GATEWAY_PUBLIC_URL must be set to the address shoppers reach the gateway at "
                "(e.g. https://shop.example): checkout links and redirects are built on it"
            )
        return self

    @property
    def public_origin(self) -> PublicOrigin:
        """The configured public origin; in the embedded mode `store dev`'s default address."""
        return PublicOrigin.parse(self.public_url or EMBEDDED_PUBLIC_URL)

    def _with_origin(self, hosts: list[str]) -> frozenset[str]:
        origin = self.public_origin
        # A local run answers to every loopback name: a browser may say localhost or [::1].
        local = LOOPBACK_NAMES if self.runtime.embedded and origin.is_loopback else ()
        return frozenset({origin.host, *local, *hosts})

    @property
    def accepted_hosts(self) -> frozenset[str]:
        """Hosts a request may be addressed to (normalized)."""
        return self._with_origin(self.allowed_hosts)

    @property
    def return_hosts(self) -> frozenset[str]:
        """Hosts a payment may send the shopper back to (normalized)."""
        return self._with_origin(self.return_url_hosts)

    @property
    def effective_cookie_secure(self) -> bool:
        return (not self.runtime.embedded) if self.cookie_secure is None else self.cookie_secure
