"""Test helpers for the orders service: a fake catalog app, builders, a stepping clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query

from libs.contracts.catalog import (
    PricingInfo,
    PricingLookupIn,
    PricingLookupOut,
    ReservationLineOut,
    ReservationOut,
    ShippingMethodOut,
    ShippingQuoteOut,
    TaxRateOut,
)
from libs.contracts.common import Owner, Principal
from libs.contracts.events import (
    CartLineSnapshot,
    DisputeClosed,
    DisputeOpened,
    Interval,
    RefundFailed,
    RefundSucceeded,
)
from libs.contracts.orders import PrepareOrderIn, ShippingChoice
from libs.contracts.payments import Address, BillingDetails, ShippingAddress
from libs.runtime.problems import ProblemError


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class FakeCatalog:
    """A tiny catalog: prices with names per locale, tax rates; records every call.

    Tax rates answer as the catalog does: `?country=C&tax_code=X` gives C's rates made for X,
    or C's general rates (no tax code) when none is; without `tax_code`, the general rates.
    A lookup with a country answers those of each tax code of the prices found.
    """

    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    rates: list[TaxRateOut] = field(default_factory=list)
    lookups: list[PricingLookupIn] = field(default_factory=list)
    tax_queries: list[dict[str, str]] = field(default_factory=list)
    # code -> (method in its currency, countries or None for all)
    shipping: dict[str, tuple[ShippingMethodOut, tuple[str, ...] | None]] = field(
        default_factory=dict
    )
    # When set, a lookup waits until this many lookups are in flight (to line up races).
    rendezvous: int = 0
    # False: a catalog from before lookups took a country (it answers no rates).
    knows_country: bool = True
    # Stock: what a commit reports backordered per order, the commits asked for, and how
    # many commits fail (503) before one is answered.
    backorders: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    commit_failures: int = 0
    _arrived: int = 0
    _all_arrived: asyncio.Event | None = None

    def add_price(
        self,
        unit_amount: int,
        currency: str = "EUR",
        *,
        product_key: str | None = None,
        names: dict[str, str] | None = None,
        tax_code: str | None = None,
        interval: Interval | None = None,
        interval_count: int = 1,
        active: bool = True,
        statement_descriptor: str | None = None,
        shippable: bool = False,
    ) -> str:
        pricing_id = new_id()
        key = product_key or f"product-{pricing_id[:8]}"
        self.prices[pricing_id] = {
            "product_key": key,
            "names": names or {"en": key.title()},
            "unit_amount": unit_amount,
            "currency": currency,
            "tax_code": tax_code,
            "interval": interval,
            "interval_count": interval_count,
            "active": active,
            "statement_descriptor": statement_descriptor,
            "shippable": shippable,
        }
        return pricing_id

    def add_rate(
        self,
        percentage: str,
        *,
        country: str = "DE",
        inclusive: bool = False,
        tax_code: str | None = None,
        name: str | None = None,
    ) -> str:
        rate = TaxRateOut(
            id=new_id(),
            display_name=name or f"VAT {percentage}%",
            percentage=Decimal(percentage),
            country_code=country,
            inclusive=inclusive,
            tax_code=tax_code,
        )
        self.rates.append(rate)
        return rate.id

    def add_shipping(
        self,
        code: str,
        amount: int,
        currency: str = "EUR",
        *,
        countries: tuple[str, ...] | None = None,
        free_over: int | None = None,
        tax_code: str | None = "shipping",
        name: str | None = None,
    ) -> str:
        self.shipping[code] = (
            ShippingMethodOut(
                code=code,
                name=name or code.title(),
                currency=currency,
                amount=amount,
                free_over=free_over,
                tax_code=tax_code,
                countries=list(countries) if countries else None,
                delivery_days_min=1,
                delivery_days_max=3,
            ),
            countries,
        )
        return code

    def info(self, pricing_id: str, locale: str | None) -> PricingInfo:
        price = self.prices[pricing_id]
        names = price["names"]
        return PricingInfo(
            pricing_id=pricing_id,
            product_key=price["product_key"],
            name=names.get(locale or "en") or names.get("en") or next(iter(names.values())),
            statement_descriptor=price["statement_descriptor"],
            unit_amount=price["unit_amount"],
            currency=price["currency"],
            interval=price["interval"],
            interval_count=price["interval_count"],
            active=price["active"],
            tax_code=price["tax_code"],
            shippable=price["shippable"],
        )

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/internal/pricings/lookup")
        async def lookup(body: PricingLookupIn) -> PricingLookupOut:
            self.lookups.append(body)
            await self._meet()
            items = [self.info(pid, body.locale) for pid in body.ids if pid in self.prices]
            country = body.country if self.knows_country else None
            rates: dict[str, TaxRateOut] = {}
            if country is not None:
                for tax_code in {item.tax_code for item in items}:
                    rates |= {rate.id: rate for rate in self._rates(country, tax_code)}
            return PricingLookupOut(
                items=items,
                missing=[pid for pid in body.ids if pid not in self.prices],
                tax_rates=list(rates.values()),
                country=country,
            )

        @app.get("/internal/tax-rates")
        async def tax_rates(country: str, tax_code: str | None = Query(None)) -> list[TaxRateOut]:
            query = {"country": country} | ({"tax_code": tax_code} if tax_code else {})
            self.tax_queries.append(query)
            return self._rates(country, tax_code)

        @app.get("/internal/shipping-methods/{code}")
        async def shipping_quote(code: str, country: str, currency: str) -> ShippingQuoteOut:
            found = self.shipping.get(code)
            if (
                found is None
                or found[0].currency != currency
                or (found[1] is not None and country not in found[1])
            ):
                raise ProblemError("does not ship there", status=422, code="shipping_unavailable")
            method = found[0]
            return ShippingQuoteOut(method=method, tax_rates=self._rates(country, method.tax_code))

        @app.post("/internal/stock/reservations/{order_id}/commit")
        async def commit_stock(order_id: str) -> ReservationOut:
            self.commits.append(order_id)
            if self.commit_failures > 0:
                self.commit_failures -= 1
                raise ProblemError("catalog is down", status=503, code="service_unavailable")
            lines = [
                ReservationLineOut(product_key=key, quantity=q, status="sold", backordered=q)
                for key, q in self.backorders.get(order_id, [])
            ]
            return ReservationOut(
                order_id=order_id, status="sold" if lines else "none", lines=lines
            )

        return app

    def _rates(self, country: str, tax_code: str | None) -> list[TaxRateOut]:
        national = [rate for rate in self.rates if rate.country_code == country]
        specific = [rate for rate in national if tax_code and rate.tax_code == tax_code]
        return specific or [rate for rate in national if rate.tax_code is None]

    async def _meet(self) -> None:
        if not self.rendezvous:
            return
        if self._all_arrived is None:
            self._all_arrived = asyncio.Event()
        self._arrived += 1
        if self._arrived >= self.rendezvous:
            self._all_arrived.set()
        await asyncio.wait_for(self._all_arrived.wait(), 10)


def billing(country: str = "DE") -> BillingDetails:
    return BillingDetails(
        name="Ada Lovelace",
        email="ada@example.com",
        address=Address(
            line1="1 Analytical St", city="Berlin", postal_code="10115", country=country
        ),
    )


def prepare_in(
    owner: Owner,
    lines: list[tuple[str, int]],
    *,
    currency: str = "EUR",
    country: str = "DE",
    locale: str = "en",
    order_id: str | None = None,
    cart_id: str | None = None,
    customer_id: str | None = None,
    shipping: str | None = None,
    ship_to: str | None = None,
) -> PrepareOrderIn:
    return PrepareOrderIn(
        order_id=order_id or new_id(),
        cart_id=cart_id or new_id(),
        owner=owner,
        customer_id=customer_id or new_id(),
        billing=billing(country),
        locale=locale,
        currency=currency,
        lines=[CartLineSnapshot(pricing_id=pid, quantity=qty) for pid, qty in lines],
        shipping=None
        if shipping is None
        else ShippingChoice(method=shipping, address=shipping_address(ship_to or country)),
    )


def shipping_address(country: str = "DE") -> ShippingAddress:
    return ShippingAddress(
        name="Charles Babbage",
        phone="+49 30 1234567",
        line1="2 Difference Rd",
        city="Berlin",
        postal_code="10117",
        country=country,
    )


def user(user_id: str | None = None) -> Owner:
    return Owner(kind="user", id=user_id or new_id())


def anonymous(anonymous_id: str | None = None) -> Owner:
    return Owner(kind="anonymous", id=anonymous_id or new_id())


def principal_of(owner: Owner) -> Principal:
    if owner.kind == "user":
        return Principal(user_id=owner.id)
    if owner.kind == "anonymous":
        return Principal(anonymous_id=owner.id)
    return Principal(user_id=new_id(), orgs=[owner.id])


REFUND_DECIDED = datetime(2026, 3, 3, 9, tzinfo=UTC)


def refund_succeeded(
    order_id: str, amount: int, *, refund_id: str | None = None, currency: str = "EUR"
) -> RefundSucceeded:
    return RefundSucceeded(
        refund_id=refund_id or new_id(),
        attempt_id=new_id(),
        order_id=order_id,
        amount=amount,
        currency=currency,
        provider="dev",
        reason="operator",
        created_at=REFUND_DECIDED,
        succeeded_at=REFUND_DECIDED + timedelta(seconds=2),
    )


def refund_failed(
    order_id: str,
    amount: int,
    *,
    refund_id: str | None = None,
    status: str = "failed",
    currency: str = "EUR",
) -> RefundFailed:
    return RefundFailed(
        refund_id=refund_id or new_id(),
        attempt_id=new_id(),
        order_id=order_id,
        amount=amount,
        currency=currency,
        provider="dev",
        reason="operator",
        status=status,  # type: ignore[arg-type]
        failure_reason="expired_or_canceled_card",
        created_at=REFUND_DECIDED,
        failed_at=REFUND_DECIDED + timedelta(days=1),
    )


DISPUTE_OPENED = datetime(2026, 3, 5, 10, tzinfo=UTC)
DISPUTE_DUE = DISPUTE_OPENED + timedelta(days=14)
DISPUTE_CLOSED = DISPUTE_OPENED + timedelta(days=30)


def dispute_opened(
    order_id: str | None, amount: int = 5000, *, dispute_id: str | None = None
) -> DisputeOpened:
    return DisputeOpened(
        dispute_id=dispute_id or new_id(),
        provider="dev",
        provider_dispute_id="du_" + new_id()[:8],
        attempt_id=new_id(),
        order_id=order_id,
        amount=amount,
        currency="eur",
        reason="fraudulent",
        status="needs_response",
        evidence_due_by=DISPUTE_DUE,
        opened_at=DISPUTE_OPENED,
    )


def dispute_closed(opened: DisputeOpened, status: str = "lost") -> DisputeClosed:
    return DisputeClosed(
        **opened.model_dump(exclude={"status"}),
        status=status,  # type: ignore[arg-type]
        closed_at=DISPUTE_CLOSED,
    )


class SteppingClock:
    """A clock that moves one second per reading, so "newest first" is never a tie."""

    def __init__(self, start: datetime | None = None) -> None:
        self._times: Iterator[datetime] = (
            (start or datetime(2026, 3, 1, 12, tzinfo=UTC)) + timedelta(seconds=n)
            for n in range(10**9)
        )

    def __call__(self) -> datetime:
        return next(self._times)


@dataclass
class OrdersHarness:
    """The orders service started on its own database, with a fake catalog and the bus."""

    deps: Any
    shared: Any
    catalog: FakeCatalog

    @property
    def service(self) -> Any:
        return self.deps.service

    @property
    def runtime(self) -> Any:
        return self.deps.runtime

    async def outbox_types(self) -> list[str]:
        from sqlalchemy import select

        outbox = self.runtime.outbox
        async with self.runtime.sessions() as session:
            rows = await session.execute(select(outbox.c.type).order_by(outbox.c.id))
            return [row[0] for row in rows]

    async def settle(self) -> None:
        """Wait until every event on the in-process bus was handled (or dead-lettered)."""
        await self.runtime.relay.drain()
        await self.shared.bus.idle()


@asynccontextmanager
async def running_orders(
    tmp_path: Path,
    *,
    catalog: FakeCatalog | None = None,
    database_url: str | None = None,
    **runtime_settings: Any,
) -> AsyncIterator[OrdersHarness]:
    """Build and start the orders service (migrating its database) like its app would."""
    from libs.runtime.migrations import upgrade
    from libs.runtime.runtime import shared_for
    from libs.runtime.settings import RuntimeSettings
    from services.orders.bootstrap import build_deps
    from services.orders.settings import OrdersSettings

    catalog = catalog or FakeCatalog()
    from tests.support.services import TEST_SERVICE_TOKEN

    runtime = RuntimeSettings(
        data_dir=tmp_path,
        outbox_poll_interval_ms=20,
        # five retries, 10 ms apart, unless the test says otherwise
        **{
            "consumer_retry_ladder_ms": (10,),
            "consumer_retry_budget_s": 0.05,
            "service_token": TEST_SERVICE_TOKEN,
            **runtime_settings,
        },
    )
    settings = OrdersSettings(runtime=runtime, database_url=database_url)
    shared = shared_for(runtime)
    shared.directory.register_app("catalog", catalog.app())
    deps = build_deps(settings, shared, clock=SteppingClock())
    if not runtime.embedded:
        await upgrade(deps.runtime.engine, deps.runtime.migrations_dir)
    await deps.runtime.start()
    try:
        yield OrdersHarness(deps=deps, shared=shared, catalog=catalog)
    finally:
        await deps.runtime.stop()
