"""What the payments service counts for operators: refunds, flagged payments, reconciliation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter


@dataclass(frozen=True)
class PaymentsMetrics:
    refunds: Counter
    refunds_failed: Counter
    flagged: Counter
    disputes_opened: Counter
    disputes_closed: Counter
    reconciled: Counter
    versions_refused: Counter


@cache
def payments_metrics() -> PaymentsMetrics:
    """The counters, registered once per process on first use (never at import)."""
    return PaymentsMetrics(
        refunds=Counter(
            "store_payments_refunds_total",
            "Refunds that succeeded at the provider, by why the money went back.",
            ["reason"],
        ),
        refunds_failed=Counter(
            "store_payments_refunds_failed_total",
            "Refunds that will not happen by themselves (the provider failed, canceled or "
            "refused them, or every retry failed): money an operator must send back.",
            ["reason", "status"],
        ),
        flagged=Counter(
            "store_payments_flagged_total",
            "Reported payments whose amount or currency did not match their attempt.",
            ["reason"],
        ),
        disputes_opened=Counter(
            "store_payments_disputes_opened_total",
            "Payments disputed by the shopper's bank: each needs evidence before its deadline.",
            ["reason"],
        ),
        disputes_closed=Counter(
            "store_payments_disputes_closed_total",
            "Disputes that ended, by how (won, lost, warning_closed, prevented).",
            ["status"],
        ),
        reconciled=Counter(
            "store_payments_reconciled_total",
            "Attempts settled by reconciliation (a webhook that never arrived).",
            ["outcome"],
        ),
        versions_refused=Counter(
            "store_payments_webhook_versions_refused_total",
            "Signed Stripe events refused because their API version is not the pinned one.",
            ["api_version"],
        ),
    )
