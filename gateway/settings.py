"""Gateway settings (`GATEWAY_*`). Defaults are the embedded mode's; secrets have no production
default: outside the embedded mode the gateway refuses to start with the dev ones."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.runtime.settings import RuntimeSettings

DEV_JWT_SECRET = "dev-jwt-secret-not-for-production"
DEV_COOKIE_SECRET = "dev-cookie-secret-not-for-production"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    jwt_secret: str = Field(DEV_JWT_SECRET, description="HS256 secret that signs user tokens.")
    jwt_public_key: str | None = Field(
        None, description="PEM public key; when set, tokens are verified with RS256 instead."
    )
    jwt_audience: str | None = Field(None, description="Required `aud` claim, if any.")
    jwt_issuer: str | None = Field(None, description="Required `iss` claim, if any.")
    cookie_secret: str = Field(
        DEV_COOKIE_SECRET, description="Key that signs the anonymous cookie."
    )
    cookie_name: str = Field("store_anon", description="Name of the anonymous cookie.")
    cookie_secure: bool = Field(False, description="Mark the anonymous cookie Secure (HTTPS only).")
    cookie_max_age_s: int = Field(
        30 * 24 * 3600, ge=60, description="Lifetime of the anonymous cookie."
    )
    product_cache_ttl_s: float = Field(
        5.0, ge=0, description="Seconds the gateway keeps product pages (0: no cache)."
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

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Self:
        if self.runtime.embedded:
            return self
        if self.jwt_public_key is None and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("GATEWAY_JWT_SECRET (or GATEWAY_JWT_PUBLIC_KEY) must be set")
        if self.cookie_secret == DEV_COOKIE_SECRET:
            raise ValueError("GATEWAY_COOKIE_SECRET must be set")
        return self
