"""Settings of the payments service, read from `PAYMENTS_*` variables; defaults are embedded mode."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.runtime.settings import RuntimeSettings


class ProviderNotConfigured(ValueError):
    """Payments cannot start: no payment provider is usable."""


class PaymentsSettings(BaseSettings):
    """Customers, payment attempts, the payment provider and subscriptions."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    database_url: str | None = Field(
        None, description="Database URL; default: a SQLite file `payments.db` in the data folder."
    )
    database_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Pooled connections of one payments process; default `STORE_DB_POOL_SIZE`.",
    )
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    provider: Literal["stripe", "dev"] | None = Field(
        None,
        description="Payment provider of new payments: `stripe`, or `dev` (marks orders paid "
        "from its own page, no money moves). Default: `dev` in the embedded mode, `stripe` in "
        "the distributed mode, where `dev` must be chosen explicitly.",
    )
    public_url: str | None = Field(
        None,
        description="Public base URL of the gateway for the dev checkout page's links; default: "
        "the gateway's `GATEWAY_PUBLIC_URL`, which every relative link is made absolute on.",
    )
    stripe_secret_key: SecretStr | None = Field(
        None, description="Stripe secret API key; required when the provider is `stripe`."
    )
    stripe_webhook_secret: SecretStr | None = Field(
        None,
        description="Signing secret of the Stripe webhook endpoint (`whsec_...`); required "
        "with a Stripe key. Several, comma-separated, are accepted side by side: a rolled "
        "secret and its successor, or a second endpoint during an API version upgrade.",
    )
    stripe_api_base: str | None = Field(
        None, description="Stripe API base URL override (a local fake in tests); default Stripe's."
    )
    stripe_webhook_tolerance_s: int = Field(
        300, ge=1, description="Oldest accepted age of a Stripe webhook signature, in seconds."
    )
    stripe_timeout_s: float = Field(20.0, gt=0, description="Timeout of one Stripe API call.")
    stripe_max_network_retries: int = Field(
        2, ge=0, description="Retries of a Stripe call on network errors (idempotency-keyed)."
    )
    reconcile_interval_s: float = Field(
        60.0,
        ge=0,
        description="How often reconciliation asks the provider about attempts a lost webhook "
        "may have left unpaid, and retries pending refunds; 0 turns the periodic run off.",
    )
    reconcile_after_s: int = Field(
        900,
        ge=0,
        description="Age of an unpaid attempt (or its expiry, whichever is first) after which "
        "reconciliation asks the provider about it, in seconds.",
    )
    reconcile_batch: int = Field(
        100, ge=1, description="Most attempts and refunds one reconciliation run handles."
    )
    refund_max_tries: int = Field(
        8,
        ge=1,
        description="Calls to the provider a refund gets before it is `failed` for good (an "
        "operator sends the money back); the waits between them double from one minute to at "
        "most an hour.",
    )
    dev_checkout_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long a dev-provider checkout stays open, in seconds."
    )

    @model_validator(mode="after")
    def _provider_chosen_explicitly(self) -> PaymentsSettings:
        if self.stripe_secret_key is not None and not self.stripe_secret_key.get_secret_value():
            self.stripe_secret_key = None
        if self.stripe_secret_key is not None and not (
            self.stripe_webhook_secret and all(self.stripe_webhook_secrets)
        ):
            raise ValueError(
                "PAYMENTS_STRIPE_WEBHOOK_SECRET is required when PAYMENTS_STRIPE_SECRET_KEY is "
                "set: webhooks must be verified"
            )
        return self

    @field_validator("provider", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    def check_provider(self) -> None:
        """Refuse to serve payments with no provider chosen: Stripe without its keys."""
        if self.effective_provider == "stripe" and self.stripe_secret_key is None:
            raise ProviderNotConfigured(
                "The payment provider is stripe: set PAYMENTS_STRIPE_SECRET_KEY and "
                "PAYMENTS_STRIPE_WEBHOOK_SECRET, or choose the development provider explicitly "
                "with PAYMENTS_PROVIDER=dev (no money moves; anyone can mark orders paid)."
            )

    @property
    def stripe_webhook_secrets(self) -> list[str]:
        """The endpoint secrets, in the order given."""
        if self.stripe_webhook_secret is None:
            return []
        return [part.strip() for part in self.stripe_webhook_secret.get_secret_value().split(",")]

    @property
    def effective_provider(self) -> str:
        """The chosen provider; unset: Stripe when its key is set or outside the embedded mode."""
        if self.provider is not None:
            return self.provider
        stripe_key = self.stripe_secret_key is not None
        return "stripe" if stripe_key or not self.runtime.embedded else "dev"

    @property
    def stripe_enabled(self) -> bool:
        return self.effective_provider == "stripe"

    @property
    def dev_enabled(self) -> bool:
        """The dev provider takes new payments and its checkout pages are served."""
        return self.effective_provider == "dev"

    def resolved_database_url(self) -> str:
        return self.database_url or self.runtime.sqlite_url("payments")

    def dev_checkout_url(self, attempt_id: str) -> str:
        """Where the dev provider's hosted page of an attempt is, through the gateway: under
        `public_url` when set, else a path the gateway makes absolute on its public URL."""
        path = f"/api/payments/dev-checkout/{attempt_id}"
        return f"{self.public_url.rstrip('/')}{path}" if self.public_url else path
