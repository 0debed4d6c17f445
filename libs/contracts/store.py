"""Public DTOs of the gateway's store API that are not a single service's shape."""

from __future__ import annotations

from pydantic import Field, model_validator

from libs.contracts.common import ID_PATTERN
from libs.contracts.envelope import Contract, Input
from libs.contracts.orders import OrderOut
from libs.contracts.payments import BillingDetails, PaymentOut, ShippingAddress


class CheckoutShippingIn(Input):
    """How a cart with a shippable line is shipped: a method's code and, unless it is the
    billing address (with the billing name), the address."""

    method: str = Field(min_length=1, max_length=64, description="A shipping method's `code`.")
    address: ShippingAddress | None = Field(
        None, description="Default: the billing address, to the billing name."
    )

    model_config = Input.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "method": "express",
                    "address": {
                        "name": "Ada Lovelace",
                        "phone": "+49 30 1234567",
                        "line1": "Unter den Linden 1",
                        "city": "Berlin",
                        "postal_code": "10117",
                        "country": "DE",
                    },
                },
                {"method": "standard"},
            ]
        }
    }


class CheckoutIn(Input):
    """`POST /api/store/checkout`: a customer id, or billing details, or neither (the default);
    `shipping` when the cart requires it."""

    customer_id: str | None = Field(None, max_length=64, pattern=ID_PATTERN)
    billing: BillingDetails | None = None
    success_url: str = Field(min_length=1, max_length=2000)
    cancel_url: str = Field(min_length=1, max_length=2000)
    shipping: CheckoutShippingIn | None = None

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
