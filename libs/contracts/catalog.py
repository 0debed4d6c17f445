"""Catalog DTOs: the public product shapes and the internal lookups other services use."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from libs.contracts.envelope import Contract
from libs.contracts.events import Interval


class PriceOut(Contract):
    id: str
    unit_amount: int = Field(ge=0, description="Minor units of `currency`.")
    currency: str
    interval: Interval | None = Field(None, description="null for one-off prices.")
    interval_count: int = 1


class ImageOut(Contract):
    url: str
    thumbnails: dict[str, str] = Field(default_factory=dict, description="URL per size (px).")
    width: int | None = None
    height: int | None = None


class ProductOut(Contract):
    key: str
    name: str
    description: str = ""
    checkout_description: str | None = None
    locale: str
    shippable: bool
    tax_code: str | None = None
    active: bool = True
    prices: list[PriceOut] = Field(default_factory=list)
    images: list[ImageOut] = Field(default_factory=list, description="Primary image first.")


class PricingLookupIn(Contract):
    """Internal: many pricing ids, one call (`POST /internal/pricings/lookup`)."""

    ids: list[str] = Field(max_length=500)
    locale: str | None = None


class PricingInfo(Contract):
    """Everything a cart line or an order line needs to know about a price."""

    pricing_id: str
    product_key: str
    name: str
    checkout_description: str | None = None
    statement_descriptor: str | None = None
    unit_amount: int = Field(ge=0)
    currency: str
    interval: Interval | None = None
    interval_count: int = 1
    active: bool = Field(description="The price and its product can be sold now.")
    tax_code: str | None = None
    shippable: bool = False


class PricingLookupOut(Contract):
    items: list[PricingInfo]
    missing: list[str] = Field(default_factory=list, description="Ids that do not exist.")


class TaxRateOut(Contract):
    """Internal: `GET /internal/tax-rates?country=DE&tax_code=...`."""

    id: str
    display_name: str
    percentage: Decimal = Field(ge=0, le=100)
    country_code: str
    inclusive: bool
    tax_code: str | None = None
