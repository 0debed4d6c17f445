"""`/api/admin/orders/{id}/refunds`: an operator sends some or all of an order's money back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, status

from gateway.deps import CurrentAdmin, Deps
from gateway.idempotency import HEADER, AdminIdempotent
from libs.contracts.common import ID_PATTERN
from libs.contracts.store import AdminRefundIn, AdminRefundOut

# Mounted under /api/admin for admins only (admin_router.ADMIN_ROUTES): the admin check
# comes first, before the idempotency key is even looked at.
router = APIRouter()

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


@router.post(
    "/orders/{order_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund an order",
    dependencies=[AdminIdempotent],
)
async def refund_order(
    order_id: Id,
    body: AdminRefundIn,
    admin: CurrentAdmin,
    deps: Deps,
    idempotency_key: Annotated[str | None, Header(alias=HEADER, include_in_schema=False)] = None,
) -> AdminRefundOut:
    """Refund an amount, some lines, or (neither given) all that is not refunded yet. The
    refunds of an order never exceed what was paid: 409 `refund_exceeds_paid` with `paid`,
    `refunded` and `asked`; 409 `order_not_paid`. The refund is `pending` until the provider
    settles it; the order shows it once it has."""
    return await deps.admin.refund_order(
        actor=admin.actor, order_id=order_id, body=body, idempotency_key=idempotency_key
    )
