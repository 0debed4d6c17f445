"""Wiring of the payments service: runtime, providers, services, subscriptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog

from libs.runtime.runtime import Runtime, Shared, shared_for
from services.payments.customers import CustomerService
from services.payments.dev_provider import DevProvider
from services.payments.handlers import HANDLERS, Consumers
from services.payments.payments import PaymentService
from services.payments.provider import PaymentProvider
from services.payments.reconcile import Reconciler
from services.payments.service import Clock, utcnow
from services.payments.settings import PaymentsSettings
from services.payments.subscriptions import SubscriptionService
from services.payments.tables import metadata

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PaymentsDeps:
    settings: PaymentsSettings
    runtime: Runtime
    providers: dict[str, PaymentProvider]
    customers: CustomerService
    payments: PaymentService
    subscriptions: SubscriptionService
    reconciler: Reconciler

    @property
    def provider(self) -> PaymentProvider:
        """The provider new payments go to: Stripe when configured, else the dev provider."""
        return self.payments.provider


def build_providers(settings: PaymentsSettings) -> dict[str, PaymentProvider]:
    """The dev provider always (its past attempts stay readable); Stripe when a key is set."""
    providers: dict[str, PaymentProvider] = {
        "dev": DevProvider(
            checkout_url=settings.dev_checkout_url,
            checkout_ttl=timedelta(seconds=settings.dev_checkout_ttl_s),
        )
    }
    if settings.stripe_secret_key is not None and settings.stripe_webhook_secret is not None:
        from services.payments.stripe_provider import StripeProvider

        providers["stripe"] = StripeProvider(
            secret_key=settings.stripe_secret_key.get_secret_value(),
            webhook_secrets=settings.stripe_webhook_secrets,
            api_base=settings.stripe_api_base,
            timeout_s=settings.stripe_timeout_s,
            max_network_retries=settings.stripe_max_network_retries,
            webhook_tolerance_s=settings.stripe_webhook_tolerance_s,
        )
    return providers


def build_deps(
    settings: PaymentsSettings,
    shared: Shared | None = None,
    *,
    providers: dict[str, PaymentProvider] | None = None,
    clock: Clock = utcnow,
) -> PaymentsDeps:
    """Build the service from settings; tests may pass providers and a clock."""
    if providers is None:
        settings.check_provider()
    shared = shared or shared_for(settings.runtime)
    runtime = Runtime.for_service(
        name="payments",
        settings=settings,
        metadata=metadata,
        migrations_dir=Path(__file__).parent / "migrations",
        shared=shared,
    )
    providers = providers if providers is not None else build_providers(settings)
    active = "stripe" if "stripe" in providers and settings.provider != "dev" else "dev"
    if settings.dev_enabled and not settings.runtime.embedded:
        log.warning(
            "payments.dev_provider_enabled",
            detail="PAYMENTS_PROVIDER=dev in the distributed mode: anyone who reaches the dev "
            "checkout page can mark orders paid, and no money moves. Never in production.",
        )
    customers = CustomerService(runtime=runtime, clock=clock)
    payments = PaymentService(
        runtime=runtime,
        providers=providers,
        active=active,
        clock=clock,
        refund_max_tries=settings.refund_max_tries,
    )
    deps = PaymentsDeps(
        settings=settings,
        runtime=runtime,
        providers=providers,
        customers=customers,
        payments=payments,
        subscriptions=SubscriptionService(runtime=runtime, providers=providers, clock=clock),
        reconciler=Reconciler(
            runtime=runtime,
            payments=payments,
            providers=providers,
            interval=timedelta(seconds=settings.reconcile_interval_s),
            unpaid_after=timedelta(seconds=settings.reconcile_after_s),
            batch=settings.reconcile_batch,
            clock=clock,
        ),
    )
    runtime.subscribe(Consumers(customers=customers, payments=payments), HANDLERS)
    return deps
