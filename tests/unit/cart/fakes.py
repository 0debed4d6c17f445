"""A fake catalog for cart tests: the pricing lookup, as a PricingSource and as an ASGI app."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import FastAPI

from libs.contracts.catalog import PricingInfo, PricingLookupIn, PricingLookupOut
from libs.contracts.events import Interval


@dataclass
class FakePrice:
    pricing_id: str
    product_key: str
    unit_amount: int
    currency: str = "EUR"
    names: dict[str, str] = field(default_factory=dict)
    interval: Interval | None = None
    active: bool = True

    def info(self, locale: str | None) -> PricingInfo:
        name = self.names.get(locale or "en") or self.names.get("en") or self.product_key
        return PricingInfo(
            pricing_id=self.pricing_id,
            product_key=self.product_key,
            name=name,
            unit_amount=self.unit_amount,
            currency=self.currency,
            interval=self.interval,
            active=self.active,
        )


class FakeCatalog:
    """Prices kept in memory; counts lookups so tests can assert round trips."""

    def __init__(self) -> None:
        self.prices: dict[str, FakePrice] = {}
        self.calls: list[list[str]] = []

    def add(
        self,
        unit_amount: int = 1000,
        *,
        currency: str = "EUR",
        product_key: str | None = None,
        names: dict[str, str] | None = None,
        interval: Interval | None = None,
        active: bool = True,
    ) -> FakePrice:
        """A new price with a unique id."""
        pricing_id = f"price-{uuid.uuid4().hex[:12]}"
        key = product_key or f"product-{uuid.uuid4().hex[:8]}"
        price = FakePrice(
            pricing_id,
            key,
            unit_amount,
            currency,
            names or {"en": f"Product {key}"},
            interval,
            active,
        )
        self.prices[pricing_id] = price
        return price

    async def lookup(self, ids: Sequence[str], locale: str | None) -> PricingLookupOut:
        self.calls.append(list(ids))
        found = [self.prices[i].info(locale) for i in ids if i in self.prices]
        return PricingLookupOut(items=found, missing=[i for i in ids if i not in self.prices])

    def app(self) -> FastAPI:
        """The same catalog as an ASGI app serving `POST /internal/pricings/lookup`."""
        app = FastAPI()

        @app.post("/internal/pricings/lookup", response_model=PricingLookupOut)
        async def lookup(body: PricingLookupIn) -> PricingLookupOut:
            return await self.lookup(body.ids, body.locale)

        return app
