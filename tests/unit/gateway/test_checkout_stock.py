"""The stock steps of the gateway's workflows, on fake services: checkout reserves after the
order is prepared and before the payment starts, releases when the payment cannot start (not
when a payment is under way), binds the hold to the attempt; the cart refuses more than is
available."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gateway.identity import Caller
from gateway.interactor import StoreInteractor
from libs.contracts.cart import AddLineIn, CartLineOut, CartOut, SetQuantityIn
from libs.contracts.catalog import ReservationOut, StockCheckLine, StockCheckOut
from libs.contracts.common import Owner
from libs.contracts.store import CheckoutIn, PayIn
from libs.runtime.http import Passthrough
from libs.runtime.problems import Conflict, ProblemError, ServiceUnavailable
from tests.unit.gateway.test_checkout_owner import LOCALE, URLS, Services


class StockServices(Services):
    """A checkout's services with a catalog that tracks one product, `mug`, with `free` left."""

    def __init__(self, *, free: int = 5, in_cart: int = 1, start_fails: Exception | None = None):
        super().__init__(order_owner=Owner(kind="anonymous", id="anon-1"))
        self.free = free
        self.in_cart = in_cart
        self.start_fails = start_fails
        self.calls: list[str] = []
        self.catalog = SimpleNamespace(
            check_stock=self.check_stock,
            reserve_stock=self.reserve,
            release_stock=self.release,
            bind_stock_attempt=self.bind,
        )
        self.cart = SimpleNamespace(
            checkout=self.checkout, summary=self.summary, add_line=self.add, set_quantity=self.set
        )
        self.orders = SimpleNamespace(prepare_order=self.prepare_order, get_order=self.get_order)

    async def summary(self, principal: Any, *, locale: str | None) -> Passthrough[CartOut]:
        line = CartLineOut(
            line_id="l1", pricing_id="p", product_key="mug", name="Mug",
            quantity=self.in_cart, unit_amount=1000, subtotal=1000 * self.in_cart,
        )  # fmt: skip
        return Passthrough.of(CartOut(lines=[line], currency="EUR", subtotal=1000, total=1000))

    async def add(self, principal: Any, line: AddLineIn, *, locale: str | None) -> Any:
        self.calls.append("add")
        return Passthrough.of(CartOut())

    async def set(self, principal: Any, line_id: str, body: Any, *, locale: str | None) -> Any:
        self.calls.append("set")
        return Passthrough.of(CartOut())

    async def check_stock(self, lines: Any) -> StockCheckOut:
        wanted = sum(line.quantity for line in lines)
        checked = [
            StockCheckLine(
                pricing_id=x.pricing_id,
                product_key="mug",
                quantity=x.quantity,
                tracked=True,
                available=self.free,
            )
            for x in lines
        ]
        return StockCheckOut(lines=checked, short=["mug"] if wanted > self.free else [])

    async def reserve(self, order_id: str, lines: Any) -> ReservationOut:
        self.calls.append("reserve")
        return ReservationOut(order_id=order_id, status="held")

    async def release(self, order_id: str) -> ReservationOut:
        self.calls.append("release")
        return ReservationOut(order_id=order_id, status="released")

    async def bind(self, order_id: str, attempt_id: str) -> ReservationOut:
        self.calls.append("bind")
        return ReservationOut(order_id=order_id, status="held", attempt_id=attempt_id)

    async def start_payment(self, principal: Any, body: Any) -> Any:
        self.calls.append("start_payment")
        if self.start_fails is not None:
            raise self.start_fails
        return await super().start_payment(principal, body)

    async def get_order(self, principal: Any, order_id: str) -> Any:
        body = SimpleNamespace(order_id=order_id, customer_id="c1")
        return await self.prepare_order(principal, body)


CALLER = {"anonymous_id": "anon-1"}


async def test_checkout_reserves_before_the_payment_and_binds_the_attempt_after() -> None:
    services = StockServices()
    out = await StoreInteractor(services).checkout(  # type: ignore[arg-type]
        Caller(**CALLER), CheckoutIn(**URLS), locale=LOCALE
    )
    assert services.calls == ["reserve", "start_payment", "bind"]
    assert out.payment.attempt_id


@pytest.mark.parametrize(
    "failure", [ServiceUnavailable("payments down"), ProblemError("too large", status=422)]
)
async def test_a_payment_that_cannot_start_gives_the_stock_back(failure: Exception) -> None:
    services = StockServices(start_fails=failure)
    with pytest.raises(ProblemError):
        await StoreInteractor(services).checkout(  # type: ignore[arg-type]
            Caller(**CALLER), CheckoutIn(**URLS), locale=LOCALE
        )
    assert services.calls == ["reserve", "start_payment", "release"]


async def test_a_payment_under_way_keeps_its_stock() -> None:
    services = StockServices(start_fails=Conflict("processing", code="payment_processing"))
    with pytest.raises(ProblemError):
        await StoreInteractor(services).pay_for_order(  # type: ignore[arg-type]
            Caller(**CALLER), "o1", PayIn(**URLS)
        )
    assert services.calls == ["reserve", "start_payment"]


async def test_an_order_canceled_meanwhile_gives_its_stock_back() -> None:
    services = StockServices(start_fails=Conflict("canceled", code="order_canceled"))
    with pytest.raises(ProblemError):
        await StoreInteractor(services).pay_for_order(  # type: ignore[arg-type]
            Caller(**CALLER), "o1", PayIn(**URLS)
        )
    assert services.calls == ["reserve", "start_payment", "release"]


async def test_pay_again_reserves_anew() -> None:
    services = StockServices()
    await StoreInteractor(services).pay_for_order(  # type: ignore[arg-type]
        Caller(**CALLER), "o1", PayIn(**URLS)
    )
    assert services.calls == ["reserve", "start_payment", "bind"]


async def test_a_sold_out_cart_is_refused_before_it_is_frozen() -> None:
    services = StockServices(free=0)
    with pytest.raises(ProblemError) as refused:
        await StoreInteractor(services).checkout(  # type: ignore[arg-type]
            Caller(**CALLER), CheckoutIn(**URLS), locale=LOCALE
        )
    assert (refused.value.status, refused.value.code) == (409, "out_of_stock")
    assert refused.value.extra["products"] == [
        {"product_key": "mug", "requested": 1, "available": 0}
    ]
    assert services.calls == []  # nothing frozen, nothing reserved


async def test_adding_past_what_is_available_counts_what_the_cart_holds() -> None:
    services = StockServices(free=3, in_cart=2)
    interactor = StoreInteractor(services)  # type: ignore[arg-type]
    await interactor.add_to_cart(
        Caller(**CALLER), AddLineIn(pricing_id="p", quantity=1), locale=LOCALE
    )
    with pytest.raises(ProblemError) as refused:
        await interactor.add_to_cart(
            Caller(**CALLER), AddLineIn(pricing_id="p", quantity=2), locale=LOCALE
        )
    assert refused.value.code == "out_of_stock"
    assert refused.value.extra["products"][0] == {
        "product_key": "mug", "requested": 4, "available": 3,
    }  # fmt: skip
    assert services.calls == ["add"]


async def test_raising_a_quantity_past_what_is_available_is_refused_lowering_never() -> None:
    services = StockServices(free=3, in_cart=2)
    interactor = StoreInteractor(services)  # type: ignore[arg-type]
    with pytest.raises(ProblemError):
        await interactor.update_line(
            Caller(**CALLER), "l1", SetQuantityIn(quantity=4), locale=LOCALE
        )
    await interactor.update_line(Caller(**CALLER), "l1", SetQuantityIn(quantity=3), locale=LOCALE)
    services.free = 0
    await interactor.update_line(Caller(**CALLER), "l1", SetQuantityIn(quantity=1), locale=LOCALE)
    assert services.calls == ["set", "set"]


async def test_with_catalog_down_the_cart_still_takes_the_line() -> None:
    services = StockServices()

    async def down(lines: Any) -> StockCheckOut:
        raise ServiceUnavailable("catalog down")

    services.catalog.check_stock = down
    interactor = StoreInteractor(services)  # type: ignore[arg-type]
    await interactor.add_to_cart(
        Caller(**CALLER), AddLineIn(pricing_id="p", quantity=1), locale=LOCALE
    )
    assert services.calls == ["add"]
