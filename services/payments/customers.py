"""Customers (billing information): one default per owner, ownership enforced."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner, Principal
from libs.contracts.events import AnonymousMerged
from libs.contracts.payments import CreateBillingIn, CustomerOut
from libs.runtime.runtime import Runtime
from services.payments import publishes as facts
from services.payments.domain import CustomerNotFound, NoDefaultCustomer, validate_billing
from services.payments.service import (
    Clock,
    RepositoryFactory,
    customer_out,
    new_id,
    require_member,
    require_owner,
    utcnow,
)
from services.payments.store import CustomerRecord, PaymentsRepository, SqlPaymentsRepository

log = structlog.get_logger(__name__)


class CustomerService:
    """Customers (billing information): one default per owner, ownership enforced."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        clock: Clock = utcnow,
        repository: RepositoryFactory = SqlPaymentsRepository,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.repository = repository

    async def create_billing(
        self, *, principal: Principal | None, data: CreateBillingIn
    ) -> CustomerOut:
        """Validate billing details and keep them as a new customer of the caller or its org."""
        if data.organization_id is not None:
            owner = require_member(principal, data.organization_id)
        else:
            owner = require_owner(principal)
        details = validate_billing(data)
        now = self.clock()
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            customer = await repo.add_customer(
                CustomerRecord(
                    id=new_id(),
                    owner=owner,
                    organization_id=data.organization_id,
                    details=details,
                    is_default=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            await self.runtime.record(session, facts.customer_created(customer))
        return customer_out(customer)

    async def get_customers_for_user(self, *, principal: Principal | None) -> list[CustomerOut]:
        """The caller's own customers (the user's, or the anonymous shopper's), oldest first."""
        owner = require_owner(principal)
        async with self.runtime.transaction() as session:
            found = await self.repository(session).list_customers(owner)
        return [customer_out(c) for c in found]

    async def get_customers_for_organization(
        self, *, principal: Principal | None, organization_id: str
    ) -> list[CustomerOut]:
        """An organization's customers, for its members only."""
        owner = require_member(principal, organization_id)
        async with self.runtime.transaction() as session:
            found = await self.repository(session).list_customers(owner)
        return [customer_out(c) for c in found]

    async def get_default_customer(self, *, principal: Principal | None) -> CustomerOut:
        """The caller's default customer."""
        owner = require_owner(principal)
        async with self.runtime.transaction() as session:
            found = await self.repository(session).default_customer(owner)
        if found is None:
            raise NoDefaultCustomer("There is no billing information yet.")
        return customer_out(found)

    async def get_customer(self, *, principal: Principal | None, customer_id: str) -> CustomerOut:
        """One of the caller's (or its organizations') customers."""
        async with self.runtime.transaction() as session:
            found = await self._owned(self.repository(session), principal, customer_id)
        return customer_out(found)

    async def delete_customer(self, *, principal: Principal | None, customer_id: str) -> None:
        """Delete a customer; when it was the default, the oldest remaining one becomes it."""
        now = self.clock()
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            customer = await self._owned(repo, principal, customer_id)
            await repo.lock_owner(customer.owner)
            current = await repo.get_customer(customer_id)
            if current is None:  # deleted meanwhile
                return
            await repo.delete_customer(customer_id, now)
            deleted = await repo.get_customer(customer_id, include_deleted=True)
            assert deleted is not None
            await self.runtime.record(session, facts.customer_changed(deleted, deleted=True))
            if current.is_default:
                promoted = await repo.promote_oldest(customer.owner, now)
                if promoted is not None:
                    await self.runtime.record(session, facts.customer_changed(promoted))

    async def set_default_customer(
        self, *, principal: Principal | None, customer_id: str
    ) -> CustomerOut:
        """Make a customer its owner's default (the previous default stops being it)."""
        now = self.clock()
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            customer = await self._owned(repo, principal, customer_id)
            await repo.lock_owner(customer.owner)
            current = await repo.get_customer(customer_id)
            if current is None:
                raise CustomerNotFound(f"No customer {customer_id}.")
            for changed_id in await repo.make_default(current, now):
                changed = await repo.get_customer(changed_id)
                if changed is not None:
                    await self.runtime.record(session, facts.customer_changed(changed))
            result = await repo.get_customer(customer_id)
        assert result is not None
        return customer_out(result)

    async def anonymous_to_user(self, session: AsyncSession, payload: AnonymousMerged) -> None:
        """An anonymous shopper logged in: its customers, attempts and subscriptions become
        the user's, keeping one default (the user's own, if it had one)."""
        source = Owner(kind="anonymous", id=payload.anonymous_id)
        target = Owner(kind="user", id=payload.user_id)
        now = self.clock()
        repo = self.repository(session)
        await repo.lock_owner(target)
        await repo.lock_owner(source)
        for customer_id in await repo.reassign_customers(source, target, now):
            moved = await repo.get_customer(customer_id)
            if moved is not None:
                await self.runtime.record(session, facts.customer_changed(moved))
        attempts = await repo.reassign_attempts(source, target, now)
        subscriptions = await repo.reassign_subscriptions(source, target, now)
        log.info(
            "payments.anonymous_merged",
            user_id=payload.user_id,
            attempts=attempts,
            subscriptions=subscriptions,
        )

    async def _owned(
        self, repo: PaymentsRepository, principal: Principal | None, customer_id: str
    ) -> CustomerRecord:
        require_owner(principal)
        assert principal is not None
        found = await repo.get_customer(customer_id)
        if found is None or not principal.owns(found.owner):
            raise CustomerNotFound(f"No customer {customer_id}.")
        return found
