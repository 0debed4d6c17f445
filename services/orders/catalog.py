"""What orders asks the catalog at purchase time: prices and tax rates, never from a cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from libs.contracts.catalog import PricingInfo, PricingLookupIn, PricingLookupOut, TaxRateOut
from libs.runtime.http import ServiceClient
from services.orders.domain import choose_tax_rate


class Catalog(Protocol):
    async def pricings(self, ids: list[str], *, locale: str) -> dict[str, PricingInfo]:
        """The current pricings of `ids` (missing ones are absent), names in `locale`."""
        ...

    async def tax_rates(
        self, *, country: str, tax_codes: Iterable[str | None]
    ) -> dict[str | None, TaxRateOut | None]:
        """The rate of each tax code (None: products without one) in `country`, or None."""
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

    async def pricings(self, ids: list[str], *, locale: str) -> dict[str, PricingInfo]:
        found: PricingLookupOut = await self.client.call(
            "POST",
            "/internal/pricings/lookup",
            PricingLookupOut,
            json=PricingLookupIn(ids=ids, locale=locale).model_dump(),
        )
        return {info.pricing_id: info for info in found.items}

    async def tax_rates(
        self, *, country: str, tax_codes: Iterable[str | None]
    ) -> dict[str | None, TaxRateOut | None]:
        # One call per distinct tax code, concurrently. The catalog answers a code with the
        # rates made for it, or the country's general rates (no code) when there are none.
        codes = sorted(set(tax_codes), key=lambda code: (code is not None, code or ""))
        answers = await asyncio.gather(*(self._rates(country, code) for code in codes))
        return {
            code: choose_tax_rate(rates, code) for code, rates in zip(codes, answers, strict=True)
        }

    async def _rates(self, country: str, tax_code: str | None) -> list[TaxRateOut]:
        params: Mapping[str, str] = {"country": country}
        if tax_code is not None:
            params = {**params, "tax_code": tax_code}
        return await self.client.call("GET", "/internal/tax-rates", list[TaxRateOut], params=params)
