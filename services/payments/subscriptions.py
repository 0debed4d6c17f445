"""The caller's subscriptions, and cancelling them at the end of the period."""

from __future__ import annotations

from collections.abc import Mapping

from libs.contracts.common import Principal
from libs.contracts.payments import PortalOut, SubscriptionOut
from libs.runtime.runtime import Runtime
from services.payments import dev_provider
from services.payments import publishes as facts
from services.payments.domain import ProviderUnavailable, SubscriptionNotFound
from services.payments.provider import PaymentProvider
from services.payments.service import (
    Clock,
    RepositoryFactory,
    new_id,
    require_owner,
    subscription_out,
    utcnow,
)
from services.payments.store import PaymentsRepository, SqlPaymentsRepository, SubscriptionRecord


class SubscriptionService:
    """The caller's subscriptions, and cancelling them at the end of the period."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        providers: Mapping[str, PaymentProvider],
        clock: Clock = utcnow,
        repository: RepositoryFactory = SqlPaymentsRepository,
    ) -> None:
        self.runtime = runtime
        self.providers = providers
        self.clock = clock
        self.repository = repository

    async def list_subscriptions(self, *, principal: Principal | None) -> list[SubscriptionOut]:
        """The caller's subscriptions, newest first."""
        owner = require_owner(principal)
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            found = await repo.list_subscriptions(owner)
            counts = await repo.renewal_counts([s.id for s in found])
        return [subscription_out(s, counts[s.id]) for s in found]

    async def get_subscription(
        self, *, principal: Principal | None, subscription_id: str
    ) -> SubscriptionOut:
        """One of the caller's subscriptions."""
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            found = await self._owned(repo, principal, subscription_id)
            renewals = (await repo.renewal_counts([found.id]))[found.id]
        return subscription_out(found, renewals)

    async def cancel_subscription(
        self, *, principal: Principal | None, subscription_id: str
    ) -> SubscriptionOut:
        """Cancel at the end of the current period (the provider is told first)."""
        async with self.runtime.transaction() as session:
            found = await self._owned(self.repository(session), principal, subscription_id)
        return await self._cancel(found)

    async def _cancel(self, found: SubscriptionRecord) -> SubscriptionOut:
        if found.status != "canceled" and not found.cancel_at_period_end:
            provider = self.providers.get(found.provider)
            if provider is None:
                raise ProviderUnavailable(f"The {found.provider} provider is not configured.")
            await provider.cancel_subscription(
                # Its own key per request: a cancel after a reactivation is a new request.
                found.provider_subscription_id,
                idempotency_key=f"store-cancel-{found.id}-{new_id()}",
            )
        now = self.clock()
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            if found.status != "canceled":
                await repo.update_subscription(found.id, now, cancel_at_period_end=True)
                if await repo.mark_cancellation_announced(found.id, now):
                    await self.runtime.record(
                        session, facts.subscription_canceled(found, at_period_end=True, at=now)
                    )
            current = await repo.get_subscription(found.id)
            renewals = (await repo.renewal_counts([found.id]))[found.id]
        assert current is not None
        return subscription_out(current, renewals)

    async def subscription_portal(
        self, *, principal: Principal | None, subscription_id: str, return_url: str
    ) -> PortalOut:
        """A link to the provider's billing portal for one of the caller's subscriptions."""
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            found = await self._owned(repo, principal, subscription_id)
            provider_customer_id = await repo.provider_customer_id(
                found.customer_id, found.provider
            )
        provider = self.providers.get(found.provider)
        if provider is None:
            raise ProviderUnavailable(f"The {found.provider} provider is not configured.")
        url = await provider.billing_portal(
            provider_customer_id=provider_customer_id,
            subscription_id=found.id,
            return_url=return_url,
        )
        return PortalOut(url=url)

    async def dev_portal_page(self, *, subscription_id: str, done: str | None = None) -> str:
        """The dev provider's billing portal: the subscription, Update card and Cancel."""
        found = await self._dev_subscription(subscription_id)
        return dev_provider.render_portal_page(
            subscription_id=found.id,
            status=found.status,
            amount=found.amount,
            currency=found.currency,
            interval=found.interval,
            cancel_at_period_end=found.cancel_at_period_end,
            current_period_end=found.current_period_end,
            done=done,
        )

    async def dev_portal_card(self, *, subscription_id: str) -> None:
        """The dev portal's Update card: nothing to charge, so nothing changes but the note."""
        await self._dev_subscription(subscription_id)

    async def dev_portal_cancel(self, *, subscription_id: str) -> SubscriptionOut:
        """The dev portal's Cancel: at the end of the period, as Stripe's portal does."""
        found = await self._dev_subscription(subscription_id)
        return await self._cancel(found)

    async def _dev_subscription(self, subscription_id: str) -> SubscriptionRecord:
        async with self.runtime.transaction() as session:
            found = await self.repository(session).get_subscription(subscription_id)
        # Only where the dev provider runs: with Stripe configured the page does not exist.
        if found is None or found.provider != "dev" or "dev" not in self.providers:
            raise SubscriptionNotFound(f"No dev subscription {subscription_id}.")
        return found

    async def _owned(
        self, repo: PaymentsRepository, principal: Principal | None, subscription_id: str
    ) -> SubscriptionRecord:
        require_owner(principal)
        assert principal is not None
        found = await repo.get_subscription(subscription_id)
        if found is None or not principal.owns(found.owner):
            raise SubscriptionNotFound(f"No subscription {subscription_id}.")
        return found
