"""Payment attempts and every provider event about them.

Every provider event — a verified Stripe webhook or a press on the dev checkout page — goes
through `PaymentService.handle_provider_event`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.money import normalize_currency
from libs.contracts.payments import (
    PaymentAttemptOut,
    PaymentCheckIn,
    PaymentLine,
    PaymentOut,
    RefundOut,
    StartPaymentIn,
    SubscriptionOut,
    WebhookAck,
)
from libs.runtime.problems import Conflict, InvalidInput
from libs.runtime.runtime import Runtime
from services.payments import dev_provider
from services.payments import publishes as facts
from services.payments.disputes import DisputeService
from services.payments.domain import (
    CheckoutClosed,
    CheckoutMode,
    CustomerNotFound,
    DevCheckoutUnavailable,
    OrderAlreadyPaid,
    OrderCanceled,
    PaymentNotFound,
    PaymentProcessing,
    PaymentRejected,
    SubscriptionNotFound,
    WebhooksNotConfigured,
    billing_cycle,
    charge_lines,
    checkout_mode,
    order_lines,
    recurring_total,
)
from services.payments.metrics import payments_metrics
from services.payments.operator_refunds import OperatorRefundService
from services.payments.provider import (
    CheckoutRequest,
    PaymentProvider,
    ProviderCustomer,
    ProviderEvent,
)
from services.payments.refunds import RefundService
from services.payments.service import (
    Clock,
    RepositoryFactory,
    attempt_out,
    new_id,
    payment_out,
    subscription_out,
    utcnow,
)
from services.payments.store import (
    AttemptRecord,
    CustomerRecord,
    DuplicateProviderEvent,
    OrderPaymentRecord,
    PaymentsRepository,
    RefundRecord,
    SqlPaymentsRepository,
)

log = structlog.get_logger(__name__)


@dataclass
class _AfterCommit:
    """Provider calls that must wait until the transaction that decided them has committed."""

    expire_sessions: list[tuple[str, str]] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    settled: dict[str, str] = field(default_factory=dict)  # attempt id -> the status it took
    renewed: bool = False  # a renewal invoice was recorded (the first time)


class PaymentService:
    """Payment attempts and everything providers report about them."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        providers: Mapping[str, PaymentProvider],
        active: str,
        clock: Clock = utcnow,
        repository: RepositoryFactory = SqlPaymentsRepository,
        refund_max_tries: int = 8,
    ) -> None:
        self.runtime = runtime
        self.providers = providers
        self.active = active
        self.clock = clock
        self.repository = repository
        self.disputes = DisputeService(runtime=runtime, clock=clock, repository=repository)
        self.refunds = RefundService(
            runtime=runtime,
            providers=providers,
            max_tries=refund_max_tries,
            clock=clock,
            repository=repository,
        )
        self.operator_refunds = OperatorRefundService(
            runtime=runtime, refunds=self.refunds, clock=clock, repository=repository
        )

    @property
    def provider(self) -> PaymentProvider:
        return self.providers[self.active]

    # -- starting a payment -----------------------------------------------------------------

    async def check_payment(self, *, data: PaymentCheckIn) -> None:
        """Raise the 422 `start_payment` would raise for these lines; write nothing."""
        self._chargeable(data.currency, data.lines, data.amount)

    def _chargeable(
        self, currency: str, lines: Sequence[PaymentLine], amount: int
    ) -> tuple[str, CheckoutMode, tuple[PaymentLine, ...]]:
        """The currency, mode and lines the active provider charges; a 422 when it cannot."""
        try:
            currency = normalize_currency(currency)
        except ValueError as exc:
            raise InvalidInput.for_field("currency", str(exc), code="unknown_currency") from None
        mode = checkout_mode(lines)
        billing_cycle(lines)  # one interval for all recurring lines
        charged = charge_lines(lines, amount, mode)
        self.provider.check_limits(currency, charged)
        return currency, mode, charged

    async def start_payment(self, *, data: StartPaymentIn) -> tuple[PaymentOut, bool]:
        """A new attempt with a provider checkout, or the order's open one; True if created."""
        currency, mode, lines = self._chargeable(data.currency, data.lines, data.amount)
        provider = self.provider
        now = self.clock()
        ttl = provider.checkout_ttl
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            found = await repo.customer_for_payment(data.customer_id, provider.name)
            if found is None:
                raise CustomerNotFound(f"No customer {data.customer_id}.")
            customer, provider_customer_id = found
            order = await repo.open_order(data.order_id, order_number=data.order_number, now=now)
            if order.paid_attempt_id is not None:
                raise OrderAlreadyPaid(f"Order {data.order_number} is already paid.")
            if order.canceled_at is not None:
                raise OrderCanceled(f"Order {data.order_number} is canceled; it cannot be paid.")
            # A delayed payment (SEPA Debit, bank transfer) is on its way: a second one would be
            # taken as well, and one of them refunded days later.
            if any(a.status == "processing" for a in await repo.attempts_for_order(data.order_id)):
                raise PaymentProcessing(
                    f"A payment for order {data.order_number} is processing; it settles by itself."
                )
            unpaid = await repo.unpaid_attempts(data.order_id)
            attempt = None
            if not data.new_attempt:
                attempt = next(
                    (a for a in unpaid if a.provider == provider.name and a.is_open(now)), None
                )
                if attempt is not None and attempt.checkout_url:
                    return payment_out(attempt), False
            created = attempt is None
            replaced: list[tuple[str, str]] = []
            if attempt is None:
                replaced = await self._replace_open_attempts(repo, unpaid, now)
                attempt = await repo.add_attempt(
                    id=new_id(),
                    order_id=data.order_id,
                    order_number=data.order_number,
                    owner=data.owner,
                    customer_id=customer.id,
                    mode=mode,
                    total=data.amount,
                    currency=currency,
                    lines=lines,
                    order_lines=order_lines(data.lines),
                    statement_descriptor=data.statement_descriptor,
                    success_url=data.success_url,
                    cancel_url=data.cancel_url,
                    provider=provider.name,
                    expires_at=now + ttl if ttl else None,
                    created_at=now,
                    updated_at=now,
                )
        # One open payment per order: the replaced checkouts close before the new one opens.
        # Money that still reaches one of them is refunded when it is reported.
        await self.expire_sessions(replaced)
        # The attempt is committed before the provider is called: a failure here leaves an open
        # attempt that the next retry resumes with the same idempotency key.
        try:
            if provider_customer_id is None:
                provider_customer_id = await self._provider_customer(provider, customer)
            checkout = await provider.create_checkout(
                CheckoutRequest(
                    attempt_id=attempt.id,
                    order_id=attempt.order_id,
                    order_number=attempt.order_number,
                    mode=attempt.mode,  # type: ignore[arg-type]
                    currency=attempt.currency,
                    lines=attempt.lines,
                    success_url=attempt.success_url,
                    cancel_url=attempt.cancel_url,
                    statement_descriptor=attempt.statement_descriptor,
                    provider_customer_id=provider_customer_id,
                    expires_at=attempt.expires_at,
                    shipping=data.shipping,
                )
            )
        except PaymentRejected as exc:
            await self._reject(attempt, reason=str(exc.detail or exc)[:500])
            raise
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            # None: a racing retry gave the attempt its checkout first; that one stands.
            current = await repo.set_session(
                attempt.id,
                session_id=checkout.session_id,
                url=checkout.url,
                expires_at=checkout.expires_at,
                now=self.clock(),
            ) or await repo.get_attempt(attempt.id)
        assert current is not None
        return payment_out(current), created

    async def _replace_open_attempts(
        self, repo: PaymentsRepository, unpaid: list[AttemptRecord], now: datetime
    ) -> list[tuple[str, str]]:
        """Cancel the order's unpaid attempts (read with the order's row locked); their
        sessions. A processing attempt is never among them: its debit cannot be called back."""
        closed = []
        for other in unpaid:
            moved = await repo.transition(
                other.id, "canceled", now, failure_reason="replaced by a new attempt"
            )
            if moved and other.provider_session_id:
                closed.append((other.provider, other.provider_session_id))
        return closed

    async def expire_sessions(self, sessions: list[tuple[str, str]]) -> None:
        for provider_name, session_id in sessions:
            provider = self.providers.get(provider_name)
            if provider is None:
                continue
            try:
                await provider.expire_checkout(session_id)
            except Exception as exc:  # the session also expires by itself
                log.warning("payments.expire_failed", session_id=session_id, error=repr(exc))

    async def _provider_customer(
        self, provider: PaymentProvider, customer: CustomerRecord
    ) -> str | None:
        """The provider's customer for a Store customer, created lazily and then reused."""
        provider_customer_id = await provider.ensure_customer(
            ProviderCustomer(
                customer_id=customer.id,
                name=customer.details.name,
                email=str(customer.details.email),
                address=customer.details.address,
                vat_id=customer.details.vat_id,
                owner_key=customer.owner.key,
            )
        )
        if provider_customer_id is None:
            return None
        async with self.runtime.transaction() as session:
            return await self.repository(session).save_provider_customer(
                customer.id, provider.name, provider_customer_id, self.clock()
            )

    async def _reject(self, attempt: AttemptRecord, *, reason: str) -> None:
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            if await repo.transition(attempt.id, "failed", self.clock(), failure_reason=reason):
                await self.runtime.record(session, facts.payment_failed(attempt, reason=reason))

    async def get_payment(self, *, attempt_id: str) -> PaymentAttemptOut:
        """One payment attempt."""
        async with self.runtime.transaction() as session:
            found = await self.repository(session).get_attempt(attempt_id)
        if found is None:
            raise PaymentNotFound(f"No payment attempt {attempt_id}.")
        return attempt_out(found)

    async def get_order_payments(self, *, order_id: str) -> list[PaymentAttemptOut]:
        """Every attempt to pay one order, oldest first."""
        async with self.runtime.transaction() as session:
            found = await self.repository(session).attempts_for_order(order_id)
        return [attempt_out(a) for a in found]

    # -- what providers report ---------------------------------------------------------------

    async def receive_webhook(
        self, *, provider_name: str, payload: bytes, headers: Mapping[str, str]
    ) -> WebhookAck:
        """Verify a provider's webhook and apply it once."""
        provider = self.providers.get(provider_name)
        if provider is None or provider_name == "dev":
            raise WebhooksNotConfigured(f"No {provider_name} webhooks are configured.")
        event = await provider.parse_webhook(payload, headers)
        applied = await self.handle_provider_event(event)
        return WebhookAck(event_id=event.id, duplicate=not applied)

    async def handle_provider_event(self, event: ProviderEvent) -> bool:
        """Apply a verified provider event exactly once; False when it was seen before."""
        return await self._handle(event) is not None

    async def record_renewal(self, event: ProviderEvent) -> bool:
        """Apply a paid renewal invoice (as reconciliation found it); True when this recorded
        it, False when its webhook (or an earlier run) had."""
        after = await self._handle(event)
        return after is not None and after.renewed

    async def _handle(self, event: ProviderEvent) -> _AfterCommit | None:
        """Apply a provider event once; what it settled, or None when it was seen before."""
        for retry in range(_DEADLOCK_RETRIES + 1):
            now = self.clock()
            after = _AfterCommit()
            try:
                async with self.runtime.transaction() as session:
                    repo = self.repository(session)
                    await repo.record_provider_event(event.provider, event.id, event.type, now)
                    await self._apply(repo, session, event, now, after)
                break
            except DuplicateProviderEvent:
                log.info("payments.event_duplicate", provider=event.provider, event_id=event.id)
                return None
            except DBAPIError as exc:
                if retry == _DEADLOCK_RETRIES or not _is_deadlock(exc):
                    raise
                log.warning("payments.event_deadlock_retry", event_id=event.id, retry=retry + 1)
        await self.expire_sessions(after.expire_sessions)
        for refund_id in after.refunds:
            await self.send_refund(refund_id=refund_id)
        return after

    async def _apply(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        event: ProviderEvent,
        now: datetime,
        after: _AfterCommit,
    ) -> None:
        log.info("payments.event", provider=event.provider, type=event.type, event_id=event.id)
        if event.kind in ("subscription_updated", "subscription_deleted"):
            await self._subscription_changed(repo, session, event, now)
            return
        if event.kind == "refund_updated":
            await self.refunds.apply_event(repo, session, event)
            return
        if event.kind == "dispute_updated":
            await self.disputes.apply_event(repo, session, event)
            return
        if event.kind == "invoice_paid" and event.billing_reason in RENEWAL_BILLING_REASONS:
            after.renewed = await self._renewal(repo, session, event, now)
            return
        if event.kind in ("invoice_payment_failed", "invoice_action_required") and (
            event.billing_reason not in ("subscription_create", None)
        ):
            await self._past_due(repo, session, event, now)
            return
        if event.kind == "invoice_action_required":
            # The first invoice: the shopper confirms it on the checkout page itself.
            return
        if event.kind == "ignored" or (
            event.kind in ("invoice_paid", "invoice_payment_failed")
            and event.billing_reason not in ("subscription_create", None)
        ):
            return
        if event.kind == "invoice_payment_failed" and event.billing_reason == "subscription_create":
            # The shopper is still on the checkout page and may succeed with another card; the
            # session's own events (completed, async_payment_failed, expired) decide.
            log.info("payments.first_invoice_failed", event_id=event.id)
            return
        found = await self._find_attempt(repo, event)
        if found is None:
            log.info("payments.event_for_unknown_attempt", event_id=event.id, type=event.type)
            return
        # Lock order: the order's row first, then its attempts — as start_payment does — so
        # two events of one order queue up instead of deadlocking.
        order = await repo.lock_order(found.order_id, order_number=found.order_number, now=now)
        attempt = await repo.get_attempt(found.id)
        assert attempt is not None
        if event.kind == "checkout_completed":
            noted = _completion_notes(attempt, event)
            if event.paid:
                await self._paid(
                    repo, session, attempt, event, now, after, locked=order, noted=noted
                )
            elif event.payment_status == "unpaid" and await self._processing(
                repo, attempt, now, noted
            ):
                after.settled[attempt.id] = "processing"
            elif noted:
                await repo.update_attempt(attempt.id, now, **noted)
        elif event.kind in ("payment_succeeded", "invoice_paid"):
            await self._paid(repo, session, attempt, event, now, after, locked=order)
        elif event.kind in ("payment_failed", "invoice_payment_failed"):
            if await self._close(repo, session, attempt, "failed", now, reason=event.reason):
                after.settled[attempt.id] = "failed"
        elif event.kind == "checkout_expired":
            if await self._close(repo, session, attempt, "expired", now, reason="expired"):
                after.settled[attempt.id] = "expired"

    async def _processing(
        self,
        repo: PaymentsRepository,
        attempt: AttemptRecord,
        now: datetime,
        noted: dict[str, object],
    ) -> bool:
        """The checkout completed but its money is on its way (a delayed method): unpaid ->
        processing, until the provider says it succeeded or failed; False if it had moved."""
        moved = await repo.transition(attempt.id, "processing", now, **noted)
        if moved is None:
            return False
        log.info("payments.processing", attempt_id=attempt.id, order_id=attempt.order_id)
        return True

    async def _find_attempt(
        self, repo: PaymentsRepository, event: ProviderEvent
    ) -> AttemptRecord | None:
        if event.attempt_id:
            found = await repo.get_attempt(event.attempt_id)
            if found is not None and found.provider == event.provider:
                return found
        if event.session_id:
            found = await repo.attempt_by_session(event.session_id)
            if found is not None:
                return found
        if event.subscription is not None:
            subscription = await repo.subscription_by_provider_id(
                event.provider, event.subscription.id
            )
            if subscription is not None:
                return await repo.get_attempt(subscription.attempt_id)
            return await repo.attempt_by_provider_subscription(event.subscription.id)
        return None

    async def _paid(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        attempt: AttemptRecord,
        event: ProviderEvent,
        now: datetime,
        after: _AfterCommit,
        *,
        locked: OrderPaymentRecord | None = None,
        noted: dict[str, object] | None = None,
    ) -> None:
        """Money arrived for an attempt: it pays the order, unless the order was paid already.

        `locked` is the order's row when the caller already holds its lock and read `attempt`
        after taking it; then neither is read again. `noted` are attempt columns the event
        also sets: written with the state change (one `UPDATE ... RETURNING`), or on their own
        when the attempt does not move.
        """
        # The order's row lock serializes everything that may pay this order.
        order = locked or await repo.lock_order(
            attempt.order_id, order_number=attempt.order_number, now=now
        )
        assert order is not None
        current = attempt if locked is not None else await repo.get_attempt(attempt.id)
        assert current is not None
        pending = dict(noted or {})
        if event.subscription is not None and current.provider_subscription_id is None:
            pending["provider_subscription_id"] = event.subscription.id
        moved = None
        if current.status != "paid":
            moved = await self._pay_attempt(
                repo, session, current, order, event, now, after, pending
            )
        elif pending:
            await repo.update_attempt(current.id, now, **pending)
        if current.mode == "subscription" and (moved or current.status == "paid"):
            current = moved or await repo.get_attempt(current.id)
            assert current is not None
            await self._activate(repo, session, current, event, now)

    async def _pay_attempt(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        attempt: AttemptRecord,
        order: OrderPaymentRecord,
        event: ProviderEvent,
        now: datetime,
        after: _AfterCommit,
        pending: dict[str, object],
    ) -> AttemptRecord | None:
        """unpaid -> paid, the order paid and the event recorded; the paid attempt, or None
        when the money cannot pay it (then it is flagged or refunded)."""
        reference = event.provider_reference
        mismatch = _mismatch(attempt, event)
        reason = mismatch
        if reason is None and order.paid_attempt_id not in (None, attempt.id):
            reason = "order_already_paid"
        if reason is None and order.canceled_at is not None:
            reason = "paid_after_canceled"
        moved = None
        if reason is None:
            moved = await repo.transition(
                attempt.id,
                "paid",
                now,
                **{
                    **pending,
                    "provider_reference": reference,
                    "provider_payment_status": event.payment_status or "paid",
                },
            )
            # Not moved: failed, expired or canceled first; never leave a terminal state.
            reason = None if moved else f"paid_after_{attempt.status}"
        if moved is None:
            if pending:
                await repo.update_attempt(attempt.id, now, **pending)
            if mismatch is not None:
                await self._flag(repo, session, attempt, event, mismatch, now)
            assert reason is not None
            await self._refund(repo, attempt, event, reason, now, after)
            return None
        await repo.set_order_paid(moved.order_id, moved.id, now)
        await self.runtime.record(
            session, facts.payment_succeeded(moved, reference=reference, at=event.created)
        )
        after.settled[moved.id] = "paid"
        # Nobody may pay this order again through a checkout that is still open.
        for provider, session_id in await repo.cancel_unpaid_attempts(
            moved.order_id, now, reason="order paid by another attempt"
        ):
            if session_id:
                after.expire_sessions.append((provider, session_id))
        return moved

    async def _refund(
        self,
        repo: PaymentsRepository,
        attempt: AttemptRecord,
        event: ProviderEvent,
        reason: str,
        now: datetime,
        after: _AfterCommit,
    ) -> None:
        """Money arrived that must go back: never a second payment, refunded after commit."""
        log.warning(
            "payments.refund_required",
            attempt_id=attempt.id,
            order_id=attempt.order_id,
            reason=reason,
            reference=event.provider_reference,
        )
        await repo.transition(attempt.id, "canceled", now, failure_reason=reason)
        await repo.update_attempt(
            attempt.id,
            now,
            refund_required=True,
            refund_reason=reason,
            provider_reference=event.provider_reference or attempt.provider_reference,
        )
        refund = await repo.add_refund(
            id=new_id(),
            attempt_id=attempt.id,
            order_id=attempt.order_id,
            provider=attempt.provider,
            provider_reference=event.provider_reference or attempt.provider_reference,
            amount=event.amount if event.amount is not None else attempt.total,
            currency=event.currency or attempt.currency,
            reason=reason,
            idempotency_key=f"attempt:{attempt.id}",
            created_at=now,
        )
        after.refunds.append(refund.id)

    async def _flag(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        attempt: AttemptRecord,
        event: ProviderEvent,
        reason: str,
        now: datetime,
    ) -> None:
        """The provider reported money that does not match the attempt: flagged, not paid."""
        log.error(
            "payments.payment_flagged",
            attempt_id=attempt.id,
            reason=reason,
            expected=(attempt.total, attempt.currency),
            reported=(event.amount, event.currency),
        )
        payments_metrics().flagged.labels(reason=reason).inc()
        await self.runtime.record(session, facts.payment_flagged(attempt, event, reason=reason))

    async def send_refund(self, *, refund_id: str) -> RefundRecord | None:
        """Ask the provider for a pending refund (see `refunds.RefundService.send`)."""
        return await self.refunds.send(refund_id=refund_id)

    async def list_refunds(self, *, status: str | None = None, limit: int = 100) -> list[RefundOut]:
        """Refunds, newest first (optionally of one status)."""
        return await self.refunds.list(status=status, limit=limit)

    async def _close(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        attempt: AttemptRecord,
        target: Literal["failed", "expired"],
        now: datetime,
        *,
        reason: str | None,
    ) -> bool:
        """unpaid (or processing, for `failed`) -> `target` with its event; False when the
        attempt had moved already."""
        if not await repo.transition(attempt.id, target, now, failure_reason=reason):
            return False  # already paid, failed, expired or canceled: a late event changes nothing
        if target == "failed":
            await self.runtime.record(session, facts.payment_failed(attempt, reason=reason))
        else:
            await self.runtime.record(session, facts.payment_expired(attempt))
        return True

    # -- subscriptions ----------------------------------------------------------------------

    async def _activate(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        attempt: AttemptRecord,
        event: ProviderEvent,
        now: datetime,
    ) -> None:
        """The order that starts a subscription is paid: the subscription exists, once."""
        period_end = (
            event.subscription.current_period_end if event.subscription else None
        ) or event.period_end
        existing = await repo.subscription_by_attempt(attempt.id)
        if existing is not None:
            if period_end and (
                existing.current_period_end is None or period_end > existing.current_period_end
            ):
                await repo.update_subscription(existing.id, now, current_period_end=period_end)
            return
        provider_subscription_id = (
            event.subscription.id if event.subscription else attempt.provider_subscription_id
        )
        cycle = billing_cycle(attempt.lines)
        if provider_subscription_id is None or cycle is None:
            log.info("payments.subscription_not_named_yet", attempt_id=attempt.id)
            return
        interval, count = cycle
        subscription = await repo.add_subscription(
            id=new_id(),
            owner=attempt.owner,
            order_id=attempt.order_id,
            attempt_id=attempt.id,
            customer_id=attempt.customer_id,
            provider=attempt.provider,
            provider_subscription_id=provider_subscription_id,
            status="active",
            interval=interval,
            interval_count=count,
            amount=recurring_total(attempt.lines),
            currency=attempt.currency,
            current_period_end=period_end,
            cancel_at_period_end=False,
            created_at=now,
            updated_at=now,
        )
        await self.runtime.record(session, facts.subscription_activated(subscription))

    async def _renewal(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        event: ProviderEvent,
        now: datetime,
    ) -> bool:
        """A renewal invoice was paid: recorded once per invoice, the period moves on; True
        when this recorded it."""
        if event.subscription is None:
            return False
        subscription = await repo.subscription_by_provider_id(event.provider, event.subscription.id)
        if subscription is None:
            log.warning("payments.renewal_for_unknown_subscription", event_id=event.id)
            return False
        period_end = event.period_end or event.subscription.current_period_end
        amount = event.amount if event.amount is not None else subscription.amount
        if event.billing_reason == "subscription_update" and amount == 0:
            # A proration that charged nothing (a downgrade's credit): no money, no order.
            log.info("payments.proration_without_charge", event_id=event.id)
            return False
        currency = event.currency or subscription.currency
        invoice = event.invoice_id or event.id
        added = await repo.add_renewal(
            id=new_id(),
            subscription_id=subscription.id,
            invoice_reference=invoice,
            amount=amount,
            currency=currency,
            period_end=period_end,
            created_at=now,
        )
        if not added:
            return False
        values: dict[str, object] = {}
        if period_end and (
            subscription.current_period_end is None or period_end > subscription.current_period_end
        ):
            values["current_period_end"] = period_end
        if subscription.status != "canceled":
            values["status"] = "active"
        if values:
            await repo.update_subscription(subscription.id, now, **values)
        await self.runtime.record(
            session,
            facts.subscription_renewed(
                subscription,
                amount=amount,
                currency=currency,
                period_end=values.get("current_period_end", subscription.current_period_end),  # type: ignore[arg-type]
                invoice=invoice,
                billing_reason=event.billing_reason,
                renewed_at=event.created,
            ),
        )
        return True

    async def _past_due(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        event: ProviderEvent,
        now: datetime,
    ) -> None:
        """An invoice for a new period was not paid: the subscription is past due, announced
        once per invoice and reason with the link where the shopper pays it."""
        if event.subscription is None:
            return
        subscription = await repo.subscription_by_provider_id(event.provider, event.subscription.id)
        if subscription is None:
            log.warning("payments.past_due_for_unknown_subscription", event_id=event.id)
            return
        invoice = event.invoice_id or event.id
        reason = "action_required" if event.kind == "invoice_action_required" else "payment_failed"
        if not await repo.add_past_due(
            subscription_id=subscription.id,
            invoice_reference=invoice,
            reason=reason,
            created_at=now,
        ):
            return
        if subscription.status not in ("canceled", "unpaid"):
            await repo.update_subscription(subscription.id, now, status="past_due")
        log.warning(
            "payments.subscription_past_due",
            subscription_id=subscription.id,
            invoice=invoice,
            reason=reason,
            next_payment_attempt=event.next_payment_attempt,
        )
        await self.runtime.record(
            session,
            facts.subscription_past_due(subscription, event, invoice=invoice, reason=reason),
        )

    async def _subscription_changed(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        event: ProviderEvent,
        now: datetime,
    ) -> None:
        """The provider changed a subscription (status, cancellation, end)."""
        changed = event.subscription
        if changed is None:
            return
        subscription = await repo.subscription_by_provider_id(event.provider, changed.id)
        if subscription is None:
            log.info("payments.change_for_unknown_subscription", event_id=event.id)
            return
        deleted = event.kind == "subscription_deleted"
        if (
            not deleted
            and subscription.provider_updated_at is not None
            and event.created < subscription.provider_updated_at
        ):
            log.info("payments.stale_subscription_event", event_id=event.id)
            return
        values: dict[str, object] = {"provider_updated_at": event.created}
        if deleted:
            values["status"] = "canceled"
            values["ended_at"] = changed.ended_at or event.created
        elif changed.status and subscription.status != "canceled":
            values["status"] = changed.status
        if changed.current_period_end and (
            subscription.current_period_end is None
            or changed.current_period_end > subscription.current_period_end
        ):
            values["current_period_end"] = changed.current_period_end
        if changed.cancel_at_period_end is not None and not deleted:
            values["cancel_at_period_end"] = changed.cancel_at_period_end
        await repo.update_subscription(subscription.id, now, **values)
        # One SubscriptionCanceled per subscription: the request to cancel, or the end when
        # nobody asked before (canceled at once at the provider).
        if (deleted or changed.cancel_at_period_end) and await repo.mark_cancellation_announced(
            subscription.id, now
        ):
            await self.runtime.record(
                session,
                facts.subscription_canceled(
                    subscription,
                    at_period_end=not deleted,
                    at=changed.canceled_at or event.created,
                ),
            )

    # -- the dev provider's page and actions ------------------------------------------------

    def _require_dev(self) -> None:
        if self.active != "dev":
            raise DevCheckoutUnavailable("Payments go through Stripe here.")

    async def _dev_attempt(self, attempt_id: str) -> AttemptRecord:
        async with self.runtime.transaction() as session:
            found = await self.repository(session).get_attempt(attempt_id)
        if found is None or found.provider != "dev":
            raise PaymentNotFound(f"No dev checkout {attempt_id}.")
        return found

    async def _expire_if_due(self, attempt: AttemptRecord) -> AttemptRecord:
        now = self.clock()
        if attempt.status == "unpaid" and attempt.expires_at and attempt.expires_at <= now:
            await self.handle_provider_event(
                dev_provider.expired_event(
                    attempt_id=attempt.id, order_id=attempt.order_id, now=now
                )
            )
            return await self._dev_attempt(attempt.id)
        return attempt

    async def dev_checkout_page(self, *, attempt_id: str) -> str:
        """The dev provider's hosted checkout page of an attempt."""
        self._require_dev()
        attempt = await self._expire_if_due(await self._dev_attempt(attempt_id))
        return dev_provider.render_checkout_page(
            dev_provider.CheckoutPage(
                attempt_id=attempt.id,
                order_number=attempt.order_number,
                status=attempt.status,
                currency=attempt.currency,
                total=attempt.total,
                lines=attempt.lines,
                checkout_url=attempt.checkout_url or "",
                success_url=attempt.success_url,
                cancel_url=attempt.cancel_url,
            )
        )

    async def dev_checkout_action(
        self, *, attempt_id: str, action: Literal["pay", "decline", "pay_later"]
    ) -> str:
        """Pay or Decline on the dev page, exactly as the provider's webhook would; returns
        where to send the shopper (the success or the cancel URL)."""
        self._require_dev()
        attempt = await self._expire_if_due(await self._dev_attempt(attempt_id))
        now = self.clock()
        if attempt.status == "unpaid":
            if action == "pay_later":
                event = dev_provider.pay_later_event(
                    attempt_id=attempt.id, order_id=attempt.order_id, now=now
                )
            elif action == "pay":
                event = dev_provider.paid_event(
                    attempt_id=attempt.id,
                    order_id=attempt.order_id,
                    total=attempt.total,
                    currency=attempt.currency,
                    now=now,
                    cycle=billing_cycle(attempt.lines),
                )
            else:
                event = dev_provider.declined_event(
                    attempt_id=attempt.id, order_id=attempt.order_id, now=now
                )
            outcome = await self._handle(event)
            if outcome is not None and attempt.id in outcome.settled:
                attempt = replace(attempt, status=outcome.settled[attempt.id])
            else:  # pressed twice at once, or the attempt did not move: read where it is
                attempt = await self._dev_attempt(attempt_id)
        # A repeated press (a double click, a reload) lands where the first one did.
        if action == "pay" and attempt.status == "paid":
            return _session_url(attempt.success_url, attempt)
        if action == "decline" and attempt.status == "failed":
            return _session_url(attempt.cancel_url, attempt)
        if action == "pay_later" and attempt.status == "processing":
            return _session_url(attempt.success_url, attempt)  # as Stripe does
        raise CheckoutClosed(f"This checkout is {attempt.status}; start a new payment.")

    async def dev_settle(self, *, attempt_id: str, succeeded: bool) -> PaymentAttemptOut:
        """A dev delayed payment settles (or is refused), as the provider's webhook would say."""
        self._require_dev()
        attempt = await self._dev_attempt(attempt_id)
        if attempt.status == "processing":
            await self.handle_provider_event(
                dev_provider.settled_event(
                    attempt_id=attempt.id,
                    order_id=attempt.order_id,
                    total=attempt.total,
                    currency=attempt.currency,
                    now=self.clock(),
                    succeeded=succeeded,
                )
            )
            attempt = await self._dev_attempt(attempt_id)
        if attempt.status != ("paid" if succeeded else "failed"):
            raise CheckoutClosed(f"This payment is {attempt.status}; nothing is processing.")
        return attempt_out(attempt)

    async def dev_renew(self, *, subscription_id: str) -> SubscriptionOut:
        """A dev subscription's period ends: renewed (or ended, if set to cancel)."""
        self._require_dev()
        async with self.runtime.transaction() as session:
            subscription = await self.repository(session).get_subscription(subscription_id)
        if subscription is None or subscription.provider != "dev":
            raise SubscriptionNotFound(f"No dev subscription {subscription_id}.")
        if subscription.status == "canceled":
            raise Conflict("This subscription has ended.", code="subscription_ended")
        await self.handle_provider_event(
            dev_provider.renewal_event(
                provider_subscription_id=subscription.provider_subscription_id,
                amount=subscription.amount,
                currency=subscription.currency,
                interval=subscription.interval,
                interval_count=subscription.interval_count,
                current_period_end=subscription.current_period_end,
                cancel_at_period_end=subscription.cancel_at_period_end,
                now=self.clock(),
            )
        )
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            current = await repo.get_subscription(subscription_id)
            renewals = (await repo.renewal_counts([subscription_id]))[subscription_id]
        assert current is not None
        return subscription_out(current, renewals)


_DEADLOCK_RETRIES = 2

# Paid invoices of a running subscription that are orders of their own: a new period, and a
# proration charged at once (an upgrade mid-period); the first invoice pays the first order.
RENEWAL_BILLING_REASONS = ("subscription_cycle", "subscription_update")


def _is_deadlock(exc: DBAPIError) -> bool:
    """PostgreSQL aborted the transaction to break a deadlock (SQLSTATE 40P01)."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code == "40P01" or "deadlock detected" in str(exc)


def _mismatch(attempt: AttemptRecord, event: ProviderEvent) -> str | None:
    """Why the reported money cannot pay this attempt (None: it can, or nothing was said)."""
    if event.currency is not None and event.currency.upper() != attempt.currency.upper():
        return "currency_mismatch"
    if event.amount is not None and event.amount != attempt.total:
        return "amount_mismatch"
    return None


def _completion_notes(attempt: AttemptRecord, event: ProviderEvent) -> dict[str, object]:
    """What a completed checkout says about the attempt (an async payment may still be
    pending): the columns to set."""
    values: dict[str, object] = {}
    if event.subscription is not None and attempt.provider_subscription_id is None:
        values["provider_subscription_id"] = event.subscription.id
    if attempt.status == "unpaid":
        values["provider_payment_status"] = event.payment_status
        if event.provider_reference and attempt.provider_reference is None:
            values["provider_reference"] = event.provider_reference
    return values


def _session_url(url: str, attempt: AttemptRecord) -> str:
    # Stripe fills this placeholder in success URLs; the dev provider does the same.
    return url.replace("{CHECKOUT_SESSION_ID}", attempt.provider_session_id or "")
