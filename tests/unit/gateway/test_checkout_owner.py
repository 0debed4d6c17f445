"""A checkout answers only with an order its caller owns: a merge that re-owned the order while
an anonymous checkout ran does not tell the cookie whose it is now."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.identity import Caller
from gateway.interactor import Locale, StoreInteractor
from libs.contracts.cart import CartLineOut, CartOut, FrozenCart
from libs.contracts.catalog import ReservationOut, StockCheckOut
from libs.contracts.common import Owner
from libs.contracts.events import CartLineSnapshot
from libs.contracts.orders import OrderOut
from libs.contracts.payments import Address, CustomerOut, PaymentOut
from libs.contracts.store import CheckoutIn
from libs.runtime.http import Passthrough
from libs.runtime.problems import Unauthorized

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}


class Services:
    """The calls of a checkout; orders re-owns the order to `order_owner`."""

    def __init__(self, order_owner: Owner) -> None:
        self.order_owner = order_owner
        self.payments_started = 0
        self.payments = SimpleNamespace(
            default_customer=self.default_customer,
            start_payment=self.start_payment,
            check_payment=self.check_payment,
        )
        self.cart = SimpleNamespace(checkout=self.checkout, summary=self.summary)
        self.orders = SimpleNamespace(prepare_order=self.prepare_order)
        self.catalog = SimpleNamespace(check_stock=self.check_stock, reserve_stock=self.reserve)

    async def check_stock(self, lines: Any) -> StockCheckOut:
        return StockCheckOut(lines=[], short=[])

    async def reserve(self, order_id: str, lines: Any) -> ReservationOut:
        return ReservationOut(order_id=order_id, status="none")  # nothing tracks stock

    async def default_customer(self, principal: Any) -> CustomerOut:
        address = Address(line1="Hauptstraße 1", city="Berlin", postal_code="10115", country="DE")
        return CustomerOut(
            id=str(uuid.uuid4()),
            is_default=True,
            name="Ada",
            email="ada@example.com",
            address=address,
            owner=principal.owner,
        )

    async def summary(self, principal: Any, *, locale: str | None) -> Passthrough[CartOut]:
        line = CartLineOut(
            line_id="l1", pricing_id="p", product_key="mug", name="Mug", quantity=1,
            unit_amount=1000, subtotal=1000,
        )  # fmt: skip
        return Passthrough.of(CartOut(lines=[line], currency="EUR", subtotal=1000, total=1000))

    async def check_payment(self, principal: Any, body: Any) -> None:
        return None

    async def checkout(self, principal: Any, *, order_id: str) -> FrozenCart:
        line = CartLineSnapshot(pricing_id="p", quantity=1)
        return FrozenCart(
            cart_id=str(uuid.uuid4()),
            order_id=order_id,
            owner=principal.owner,
            currency="EUR",
            lines=[line],
        )

    async def prepare_order(self, principal: Any, body: Any) -> OrderOut:
        return OrderOut(
            id=body.order_id,
            number="2026-000001",
            currency="EUR",
            total=1000,
            created_at=datetime.now(UTC),
            details={"lines": [LINE]},
            owner=self.order_owner,
            customer_id=body.customer_id,
        )

    async def start_payment(self, principal: Any, body: Any) -> PaymentOut:
        self.payments_started += 1
        return PaymentOut(attempt_id=str(uuid.uuid4()), status="unpaid", checkout_url=None)


LINE = {"pricing_id": "p", "name": "Mug", "unit_amount": 1000, "quantity": 1}
LOCALE = Locale(explicit=None, accept_language=None, default="en")


async def test_an_order_re_owned_during_an_anonymous_checkout_is_not_shown() -> None:
    services = Services(order_owner=Owner(kind="user", id="the-user"))
    interactor = StoreInteractor(services)  # type: ignore[arg-type]
    caller = Caller(anonymous_id="anon-1")
    with pytest.raises(Unauthorized) as refused:
        await interactor.checkout(caller, CheckoutIn(**URLS), locale=LOCALE)
    assert refused.value.code == "anonymous_identity_merged"
    assert "the-user" not in str(refused.value.detail)
    assert services.payments_started == 0


async def test_an_anonymous_checkout_of_its_own_order_goes_on() -> None:
    services = Services(order_owner=Owner(kind="anonymous", id="anon-1"))
    interactor = StoreInteractor(services)  # type: ignore[arg-type]
    out = await interactor.checkout(
        Caller(anonymous_id="anon-1"), CheckoutIn(**URLS), locale=LOCALE
    )
    assert out.order.owner.id == "anon-1" and services.payments_started == 1
