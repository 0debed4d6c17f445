"""Catalog DTOs: the public product shapes, the internal lookups other services use, and the
write API of `/admin/*` (service token required). Each carries one example instance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from libs.contracts.envelope import Contract, example
from libs.contracts.events import Interval

_example = example


_PRICE = {
    "id": "0b6f5c1e-8a4e-4a59-9c61-3f2d7c1b9a10",
    "unit_amount": 790,
    "currency": "EUR",
    "interval": "month",
    "interval_count": 1,
}
_IMAGE = {
    "url": "/media/products/coffee/45644e42a4102fe1.jpg",
    "thumbnails": {
        "64": "/media/products/coffee/45644e42a4102fe1_64.jpg",
        "256": "/media/products/coffee/45644e42a4102fe1_256.jpg",
    },
    "width": 360,
    "height": 480,
}
_PRICING_INFO = {
    "pricing_id": _PRICE["id"],
    "product_key": "coffee",
    "name": "House blend coffee, 250 g",
    "checkout_description": "250 g whole beans",
    "statement_descriptor": "STORE COFFEE",
    "unit_amount": 790,
    "currency": "EUR",
    "interval": "month",
    "interval_count": 1,
    "active": True,
    "tax_code": "food",
    "shippable": True,
}
_TAX_RATE = {
    "id": "5d0e9a43-1f0b-4c55-8f3e-2b7a9c6d4e21",
    "display_name": "MwSt. 7 %",
    "percentage": "7",
    "country_code": "DE",
    "inclusive": True,
    "tax_code": "food",
}
_TRANSLATION = {
    "name": "Stoneware mug",
    "description": "A 330 ml stoneware mug, glazed red.",
    "checkout_description": "Mug, 330 ml",
    "statement_descriptor": "STORE MUG",
}
_PRICING = {
    "id": _PRICE["id"],
    "product_key": "coffee",
    "unit_amount": 790,
    "currency": "EUR",
    "interval": "month",
    "interval_count": 1,
    "active": True,
    "used": False,
    "replaced_by": None,
    "created_at": "2026-01-01T12:00:00Z",
}
_PRODUCT_IMAGE = {
    **_IMAGE,
    "id": "9f1c2b3a-4d5e-4f60-8a7b-6c5d4e3f2a1b",
    "position": 0,
    "content_hash": "45644e42a4102fe1",
    "content_type": "image/jpeg",
}


class PriceOut(Contract):
    id: str
    unit_amount: int = Field(ge=0, description="Minor units of `currency`.")
    currency: str
    interval: Interval | None = Field(None, description="null for one-off prices.")
    interval_count: int = 1

    model_config = _example(_PRICE)


class ImageOut(Contract):
    url: str
    thumbnails: dict[str, str] = Field(default_factory=dict, description="URL per size (px).")
    width: int | None = None
    height: int | None = None

    model_config = _example(_IMAGE)


class ProductStock(Contract):
    """What a shopper may still buy of a product: `available` is on hand minus reserved (at
    least 0), `null` when the product does not track stock (always available)."""

    tracked: bool = False
    available: int | None = Field(None, ge=0)

    model_config = _example({"tracked": True, "available": 3})


class ProductOut(Contract):
    key: str
    name: str
    description: str = ""
    checkout_description: str | None = None
    locale: str
    shippable: bool
    tax_code: str | None = None
    active: bool = Field(
        True, description="For sale now: the product is active and has an active price."
    )
    prices: list[PriceOut] = Field(default_factory=list)
    images: list[ImageOut] = Field(default_factory=list, description="Primary image first.")
    stock: ProductStock = Field(
        default_factory=ProductStock,
        description="Stock shown to shoppers; checkout reserves it (docs/stock.md).",
    )

    model_config = _example(
        {
            "key": "coffee",
            "name": "House blend coffee, 250 g",
            "description": "Whole beans, medium roast.",
            "checkout_description": "250 g whole beans",
            "locale": "en",
            "shippable": True,
            "tax_code": "food",
            "active": True,
            "prices": [_PRICE],
            "images": [_IMAGE],
            "stock": {"tracked": False, "available": None},
        }
    )


class TaxRateOut(Contract):
    """Internal: `GET /internal/tax-rates?country=DE&tax_code=...`, and the `tax_rates` of a
    pricing lookup with a country."""

    id: str
    display_name: str
    percentage: Decimal = Field(ge=0, le=100)
    country_code: str
    inclusive: bool
    tax_code: str | None = None

    model_config = _example(_TAX_RATE)


class PricingLookupIn(Contract):
    """Internal: many pricing ids, one call (`POST /internal/pricings/lookup`)."""

    ids: list[str] = Field(max_length=500)
    locale: str | None = None
    country: str | None = Field(
        None,
        max_length=3,
        description="ISO 3166-1 alpha-2. With a country, the answer also holds the country's "
        "tax rates for the tax codes of the prices found (`tax_rates`): what an order needs, "
        "in the same call.",
    )

    model_config = _example(
        {
            "ids": [_PRICE["id"], "6a1b2c3d-0000-4000-8000-000000000000"],
            "locale": "de",
            "country": "DE",
        }
    )


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

    model_config = _example(_PRICING_INFO)


class PricingLookupOut(Contract):
    items: list[PricingInfo]
    missing: list[str] = Field(default_factory=list, description="Ids that do not exist.")
    tax_rates: list[TaxRateOut] = Field(
        default_factory=list,
        description="With `country` asked: for each tax code of the items (none included), the "
        "country's rates made for it, or its general rates (no tax code) when none is, as "
        "`GET /internal/tax-rates` answers them; each rate once.",
    )
    country: str | None = Field(
        None,
        description="The country `tax_rates` are for: the one asked, normalized; null when "
        "none was asked (a caller can tell a catalog that answers for a country from one "
        "that does not know the field).",
    )

    model_config = _example(
        {
            "items": [_PRICING_INFO],
            "missing": ["6a1b2c3d-0000-4000-8000-000000000000"],
            "tax_rates": [_TAX_RATE],
            "country": "DE",
        }
    )


# --- write API (`/admin/*`, `x-service-token` required) --------------------------------------

MAX_UNIT_AMOUNT = 999_999_999_999
"""Largest accepted price in minor units (12 digits): far above any card network's limit."""


class TranslationIn(Contract):
    """The texts of a product in one locale."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    checkout_description: str | None = Field(
        None, max_length=500, description="Short text shown at checkout."
    )
    statement_descriptor: str | None = Field(
        None,
        description="What a card statement shows: 5-22 Latin characters, at least one letter, "
        "none of < > \\ ' \" *.",
    )

    model_config = _example(_TRANSLATION)


class PriceIn(Contract):
    """A price: integer minor units of an ISO 4217 currency, one-off or recurring."""

    unit_amount: int = Field(ge=0, le=MAX_UNIT_AMOUNT, description="Minor units of `currency`.")
    currency: str = Field(min_length=1, max_length=12, description="ISO 4217 code, e.g. EUR.")
    interval: Interval | None = Field(None, description="null for a one-off price.")
    interval_count: int = Field(
        1, ge=1, description="Intervals between charges; at most one year in total."
    )

    model_config = _example(
        {"unit_amount": 790, "currency": "EUR", "interval": "month", "interval_count": 1}
    )


class ProductIn(Contract):
    """`POST /admin/products`: a new product with its texts and, optionally, prices."""

    key: str = Field(min_length=1, max_length=128, description="Unique, URL- and file-safe.")
    tax_code: str | None = Field(None, max_length=64)
    shippable: bool = True
    active: bool = True
    translations: dict[str, TranslationIn] = Field(
        min_length=1, description="Texts by locale; the default locale's should be present."
    )
    prices: list[PriceIn] = Field(default_factory=list, max_length=100)

    model_config = _example(
        {
            "key": "mug",
            "tax_code": "general",
            "shippable": True,
            "active": True,
            "translations": {"en": _TRANSLATION, "de": {"name": "Steinzeugtasse"}},
            "prices": [{"unit_amount": 1290, "currency": "EUR"}],
        }
    )


class ProductUpdateIn(Contract):
    """`PATCH /admin/products/{key}`: only the fields given change (`tax_code: null` clears it)."""

    tax_code: str | None = Field(None, max_length=64)
    shippable: bool | None = None
    active: bool | None = None

    model_config = _example({"active": False})


class TranslationOut(TranslationIn):
    locale: str

    model_config = _example({**_TRANSLATION, "locale": "en"})


class PricingOut(Contract):
    """A price as the write API shows it, inactive and used ones included."""

    id: str
    product_key: str
    unit_amount: int
    currency: str
    interval: Interval | None = None
    interval_count: int = 1
    active: bool
    used: bool = Field(description="Sold at least once: it will never be edited in place.")
    replaced_by: str | None = None
    created_at: datetime

    model_config = _example(_PRICING)


class ProductImageOut(ImageOut):
    id: str
    position: int = Field(description="Lowest is the primary image.")
    content_hash: str
    content_type: str

    model_config = _example(_PRODUCT_IMAGE)


class ProductAdminOut(Contract):
    """A product with everything it holds, as the write API returns it."""

    key: str
    tax_code: str | None = None
    shippable: bool
    active: bool
    sellable: bool = Field(description="Active with at least one active price: listed in the shop.")
    translations: dict[str, TranslationOut]
    prices: list[PricingOut]
    images: list[ProductImageOut]
    created_at: datetime
    updated_at: datetime

    model_config = _example(
        {
            "key": "coffee",
            "tax_code": "food",
            "shippable": True,
            "active": True,
            "sellable": True,
            "translations": {"en": {**_TRANSLATION, "locale": "en"}},
            "prices": [_PRICING],
            "images": [_PRODUCT_IMAGE],
            "created_at": "2026-01-01T12:00:00Z",
            "updated_at": "2026-01-01T12:00:00Z",
        }
    )


class TaxRateIn(Contract):
    display_name: str = Field(min_length=1, max_length=100)
    percentage: Decimal = Field(ge=0, le=100, max_digits=7, decimal_places=4)
    inclusive: bool
    tax_code: str | None = Field(
        None, max_length=64, description="null: the country's general rate."
    )

    model_config = _example({"display_name": "MwSt. 19 %", "percentage": "19", "inclusive": True})


class TaxRatesIn(Contract):
    """`PUT /admin/tax-rates/{country_code}`: replaces all the rates of that country."""

    rates: list[TaxRateIn] = Field(max_length=100)

    model_config = _example(
        {
            "rates": [
                {"display_name": "MwSt. 19 %", "percentage": "19", "inclusive": True},
                {
                    "display_name": "MwSt. 7 %",
                    "percentage": "7",
                    "inclusive": True,
                    "tax_code": "food",
                },
            ]
        }
    )


# --- shipping methods (reference data, like tax rates) ---------------------------------------

_SHIPPING_METHOD = {
    "code": "standard",
    "name": "Standard shipping",
    "currency": "EUR",
    "amount": 490,
    "free_over": 5000,
    "tax_code": "shipping",
    "countries": None,
    "delivery_days_min": 2,
    "delivery_days_max": 5,
}


class ShippingMethodOut(Contract):
    """A shipping method that ships to a country in a currency: `GET /shipping-methods` (and
    `GET /api/store/shipping-methods`), with its price in that currency."""

    code: str
    name: str = Field(description="In the caller's locale.")
    currency: str
    amount: int = Field(ge=0, description="The price in minor units of `currency`, before tax.")
    free_over: int | None = Field(
        None,
        ge=0,
        description="Free when the order's lines (their subtotal, before exclusive tax) cost at "
        "least this much; null: never free.",
    )
    tax_code: str | None = None
    countries: list[str] | None = Field(
        None, description="ISO 3166-1 alpha-2 countries it ships to; null: every country."
    )
    delivery_days_min: int = Field(ge=0)
    delivery_days_max: int = Field(ge=0)

    model_config = _example(_SHIPPING_METHOD)


class ShippingQuoteOut(Contract):
    """Internal: `GET /internal/shipping-methods/{code}?country=&currency=&locale=` — one method
    for an order, with the destination's tax rates for its tax code (or its general rates)."""

    method: ShippingMethodOut
    tax_rates: list[TaxRateOut] = Field(default_factory=list)

    model_config = _example({"method": _SHIPPING_METHOD, "tax_rates": [_TAX_RATE]})


# ------------------------------------------------------------------------------------- stock

_ORDER_ID = "0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22"


class StockLineIn(Contract):
    """One line to reserve or check: a price (its product's stock) or a product key."""

    pricing_id: str | None = Field(None, max_length=64)
    product_key: str | None = Field(None, max_length=128)
    quantity: int = Field(ge=1, le=1_000_000)

    model_config = _example({"pricing_id": _PRICE["id"], "quantity": 2})


class StockCheckIn(Contract):
    """Internal: `POST /internal/stock/check` — can these quantities be bought now?"""

    lines: list[StockLineIn] = Field(min_length=1, max_length=500)

    model_config = _example({"lines": [{"pricing_id": _PRICE["id"], "quantity": 2}]})


class StockLevelOut(Contract):
    """A product's stock; `available` is `null` when it is not tracked."""

    product_key: str
    tracked: bool
    on_hand: int | None = None
    reserved: int = 0
    available: int | None = None

    model_config = _example(
        {"product_key": "mug", "tracked": True, "on_hand": 10, "reserved": 2, "available": 8}
    )


class StockCheckLine(Contract):
    pricing_id: str | None = None
    product_key: str
    quantity: int
    tracked: bool
    available: int | None = None

    model_config = _example(
        {
            "pricing_id": _PRICE["id"],
            "product_key": "mug",
            "quantity": 2,
            "tracked": True,
            "available": 1,
        }
    )


class StockCheckOut(Contract):
    """The lines as checked, and the product keys that are short (none: all can be bought)."""

    lines: list[StockCheckLine]
    short: list[str] = Field(default_factory=list)

    model_config = _example(
        {
            "lines": [
                {
                    "pricing_id": _PRICE["id"],
                    "product_key": "mug",
                    "quantity": 2,
                    "tracked": True,
                    "available": 1,
                }
            ],
            "short": ["mug"],
        }
    )


class ReserveStockIn(Contract):
    """Internal: `POST /internal/stock/reservations` — hold an order's quantities, all or none."""

    order_id: str = Field(min_length=1, max_length=64)
    lines: list[StockLineIn] = Field(max_length=500)

    model_config = _example(
        {"order_id": _ORDER_ID, "lines": [{"pricing_id": _PRICE["id"], "quantity": 2}]}
    )


class ReservationLineOut(Contract):
    product_key: str
    quantity: int
    status: str = Field(description="`held`, `released` or `sold`.")
    backordered: int = Field(0, ge=0, description="Units sold without stock to cover them.")

    model_config = _example(
        {"product_key": "mug", "quantity": 2, "status": "sold", "backordered": 1}
    )


class ReservationOut(Contract):
    """An order's reservation: one line per tracked product (none when nothing is tracked)."""

    order_id: str
    status: str = Field(description="`held`, `released`, `sold`, or `none` (nothing tracked).")
    attempt_id: str | None = Field(
        None, description="The payment attempt the hold is bound to; its expiry releases it."
    )
    expires_at: datetime | None = Field(
        None, description="When an unpaid hold is released by the sweep."
    )
    lines: list[ReservationLineOut] = Field(default_factory=list)

    model_config = _example(
        {
            "order_id": _ORDER_ID,
            "status": "held",
            "attempt_id": None,
            "expires_at": "2026-03-02T13:00:00Z",
            "lines": [{"product_key": "mug", "quantity": 2, "status": "held", "backordered": 0}],
        }
    )


class BindAttemptIn(Contract):
    """Internal: the payment attempt that now holds an order's reservation."""

    attempt_id: str = Field(min_length=1, max_length=64)

    model_config = _example({"attempt_id": "8d2c1a30-9e4b-4f1e-a0b2-2b7f7c1e9a11"})


class StockSetIn(Contract):
    """`/admin/products/{key}/stock`: the units on hand (not yet sold); tracked from now on
    unless `tracked` is false."""

    on_hand: int = Field(ge=0, le=1_000_000_000)
    tracked: bool = True
    actor: str | None = Field(None, max_length=200, description="The operator, for the event.")

    model_config = _example({"on_hand": 10})


# The search parameters of `GET /products` (catalog) and `GET /api/store/products` (gateway):
# query parameters, not a body, so described once here for both OpenAPI documents.
ProductSort = Literal["relevance", "price_asc", "price_desc", "newest"]
MAX_SEARCH_QUERY_LENGTH = 200
SEARCH_DOCS = {
    "q": "Full text in the name and description, in the caller's locale (then the default "
    "locale's), tolerant of typos; at most 200 characters.",
    "shippable": "true: only products that ship; false: only those that do not.",
    "price_min": "Lowest price, in minor units of `currency` (needs `currency`).",
    "price_max": "Highest price, in minor units of `currency` (needs `currency`).",
    "currency": "ISO 4217; with it, prices in that currency where a product has one. Needed by "
    "`price_min`, `price_max` and the price sorts.",
    "sort": "relevance (the default with `q`), price_asc, price_desc (lowest active price in "
    "`currency`), newest (the default without `q`). Without any search parameter the list "
    "stays in key order.",
}


@dataclass(frozen=True)
class ProductSearchParams:
    """The search parameters as the gateway forwards them to the catalog (which checks them
    together: a price bound needs a currency, price_min ≤ price_max, ...)."""

    q: str | None = None
    shippable: bool | None = None
    price_min: int | None = None
    price_max: int | None = None
    currency: str | None = None
    sort: str | None = None

    def query_params(self) -> dict[str, str]:
        """The parameters given, as query-string values."""
        params: dict[str, str] = {}
        for name, value in asdict(self).items():
            if isinstance(value, bool):
                params[name] = str(value).lower()
            elif value is not None:
                params[name] = str(value)
        return params
