"""Settings of the payments service, read from `PAYMENTS_*` variables; defaults are embedded mode."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.runtime.settings import RuntimeSettings


class PaymentsSettings(BaseSettings):
    """Customers, payment attempts, the payment provider and subscriptions."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    database_url: str | None = Field(
        None, description="Database URL; default: a SQLite file `payments.db` in the data folder."
    )
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public base URL of the gateway; the dev checkout page is linked under it.",
    )
    stripe_secret_key: SecretStr | None = Field(
        None, description="Stripe secret API key; when unset the dev payment provider is used."
    )
    stripe_webhook_secret: SecretStr | None = Field(
        None,
        description="Signing secret of the Stripe webhook endpoint (`whsec_...`); required "
        "with a Stripe key.",
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
    dev_checkout_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long a dev-provider checkout stays open, in seconds."
    )

    @model_validator(mode="after")
    def _stripe_needs_webhook_secret(self) -> PaymentsSettings:
        if self.stripe_secret_key is not None and not self.stripe_secret_key.get_secret_value():
            self.stripe_secret_key = None
        if self.stripe_secret_key is not None and not (
            self.stripe_webhook_secret and self.stripe_webhook_secret.get_secret_value()
        ):
            raise ValueError(
                "PAYMENTS_STRIPE_WEBHOOK_SECRET is required when PAYMENTS_STRIPE_SECRET_KEY is "
                "set: webhooks must be verified"
            )
        return self

    @property
    def stripe_enabled(self) -> bool:
        return self.stripe_secret_key is not None

    def resolved_database_url(self) -> str:
        return self.database_url or self.runtime.sqlite_url("payments")

    def dev_checkout_url(self, attempt_id: str) -> str:
        """Where the dev provider's hosted page of an attempt is, through the gateway."""
        return f"{self.public_url.rstrip('/')}/api/payments/dev-checkout/{attempt_id}"
