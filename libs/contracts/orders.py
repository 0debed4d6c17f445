"""Order DTOs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract
from libs.contracts.events import CartLineSnapshot
from libs.contracts.payments import BillingDetails


class OrderOut(Contract):
    id: str
    number: str
    currency: str
    total: int
    paid: datetime | None = None
    created_at: datetime
    details: dict[str, Any] = Field(description="Immutable snapshot taken at purchase time.")
    owner: Owner
    customer_id: str | None = None


class PrepareOrderIn(Contract):
    """Internal: `POST /orders` — idempotent by `order_id` and by `cart_id`."""

    order_id: str
    cart_id: str
    owner: Owner
    customer_id: str
    billing: BillingDetails
    locale: str = "en"
    currency: str
    lines: list[CartLineSnapshot] = Field(min_length=1)


OrderPaidFilter = Literal["paid", "unpaid"]
