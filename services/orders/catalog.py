"""What orders asks the catalog at purchase time: prices and tax rates, never from a cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from libs.contracts.catalog import (
    PricingInfo,
    PricingLookupIn,
    PricingLookupOut,
    ShippingQuoteOut,
    TaxRateOut,
)
from libs.contracts.orders import ShippingChoice
from libs.runtime.http import ServiceClient
from services.orders.domain import ShippingTerms, choose_tax_rate


@dataclass(frozen=True)
class Quote:
    """The current prices of an order's lines and the tax rates of the billing country."""

    pricings: dict[str, PricingInfo]  # missing ids are absent
    rates: list[TaxRateOut]  # the country's rates for the prices' tax codes

    def tax_rates(self) -> dict[str | None, TaxRateOut | None]:
        """The rate of each tax code of the prices (None: products without one), or None
        where the country taxes it at nothing."""
        codes = {info.tax_code for info in self.pricings.values()}
        return {code: choose_tax_rate(self.rates, code) for code in codes}


class Catalog(Protocol):
    async def quote(self, ids: list[str], *, locale: str, country: str) -> Quote:
        """The current pricings of `ids`, names in `locale`, with `country`'s tax rates."""
        ...

    async def shipping_quote(
        self, code: str, *, country: str, currency: str, locale: str
    ) -> ShippingQuoteOut:
        """Shipping method `code` priced in `currency` for `country`, with its tax rates there
        (422 `shipping_unavailable` when it does not ship there)."""
        ...


class HttpCatalog:
    """The catalog service over HTTP (or in-process ASGI in embedded mode)."""

    def __init__(self, client: Callable[[], ServiceClient]) -> None:
        # Resolved per call: the directory decides (in-process app or URL) on first use, which
        # may come after this object is built.
        self._client = client

    @property
    def client(self) -> ServiceClient:
        return self._client()

    async def quote(self, ids: list[str], *, locale: str, country: str) -> Quote:
        # One call: the lookup with a country also answers the rates for the prices' tax codes
        # (each code's own rates, or the country's general ones when it has none).
        found: PricingLookupOut = await self.client.call(
            "POST",
            "/internal/pricings/lookup",
            PricingLookupOut,
            json=PricingLookupIn(ids=ids, locale=locale, country=country).model_dump(),
        )
        pricings = {info.pricing_id: info for info in found.items}
        if found.country == country:
            return Quote(pricings=pricings, rates=found.tax_rates)
        # A catalog that does not know `country` yet (a rolling upgrade) answers no rates: an
        # order without its tax would be wrong money, so ask for them one tax code at a time.
        codes = sorted(
            {info.tax_code for info in found.items}, key=lambda c: (c is not None, c or "")
        )
        answers = await asyncio.gather(*(self._rates(country, code) for code in codes))
        return Quote(pricings=pricings, rates=[rate for rates in answers for rate in rates])

    async def shipping_quote(
        self, code: str, *, country: str, currency: str, locale: str
    ) -> ShippingQuoteOut:
        return await self.client.call(
            "GET",
            f"/internal/shipping-methods/{quote(code, safe='')}",
            ShippingQuoteOut,
            params={"country": country, "currency": currency, "locale": locale},
        )

    async def _rates(self, country: str, tax_code: str | None) -> list[TaxRateOut]:
        params: Mapping[str, str] = {"country": country}
        if tax_code is not None:
            params = {**params, "tax_code": tax_code}
        return await self.client.call("GET", "/internal/tax-rates", list[TaxRateOut], params=params)


def shipping_terms(found: ShippingQuoteOut, choice: ShippingChoice) -> ShippingTerms:
    """The method as the catalog quoted it, with the destination's rate for its tax code."""
    return ShippingTerms(
        choice=choice,
        method=found.method,
        tax_rate=choose_tax_rate(found.tax_rates, found.method.tax_code),
    )
