"""What `store payments ...` runs: the service's own code on its database and provider, without
its HTTP server or bus (events go to the outbox; the running service's relay publishes them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from libs.contracts.payments import ReconcileOut, RefundOut
from libs.runtime.migrations import upgrade
from services.payments.bootstrap import PaymentsDeps, build_deps
from services.payments.settings import PaymentsSettings


@asynccontextmanager
async def _deps(settings: PaymentsSettings | None) -> AsyncIterator[PaymentsDeps]:
    deps = build_deps(settings or PaymentsSettings())
    if deps.runtime.migrate_on_start:  # embedded mode: the database may not exist yet
        await upgrade(deps.runtime.engine, deps.runtime.migrations_dir)
    try:
        yield deps
    finally:
        for provider in deps.providers.values():
            await provider.aclose()
        await deps.runtime.engine.dispose()


async def run_reconcile(settings: PaymentsSettings | None = None) -> ReconcileOut:
    """One reconciliation run."""
    async with _deps(settings) as deps:
        return await deps.reconciler.reconcile()


async def list_refunds(
    *, status: str | None = None, limit: int = 100, settings: PaymentsSettings | None = None
) -> list[RefundOut]:
    """Refunds, newest first."""
    async with _deps(settings) as deps:
        return await deps.payments.list_refunds(status=status, limit=limit)
