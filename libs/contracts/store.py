"""Public DTOs of the gateway's store API that are not a single service's shape."""

from __future__ import annotations

from pydantic import Field, model_validator

from libs.contracts.common import ID_PATTERN
from libs.contracts.envelope import Contract, Input
from libs.contracts.orders import OrderOut
from libs.contracts.payments import BillingDetails, PaymentOut


class CheckoutIn(Input):
    """`POST /api/store/checkout`: a customer id, or billing details, or neither (the default)."""

    customer_id: str | None = Field(None, max_length=64, pattern=ID_PATTERN)
    billing: BillingDetails | None = None
    success_url: str = Field(min_length=1, max_length=2000)
    cancel_url: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_source(self) -> CheckoutIn:
        if self.customer_id and self.billing:
            raise ValueError("give either customer_id or billing, not both")
        return self


class PayIn(Input):
    """`POST /api/store/orders/{order_id}/pay`."""

    success_url: str = Field(min_length=1, max_length=2000)
    cancel_url: str = Field(min_length=1, max_length=2000)


class CheckoutOut(Contract):
    order: OrderOut
    payment: PaymentOut
