"""The catalog's HTTP API: public reads, internal lookups, the token-protected write API, media.

Routes parse, call the service, return the DTO; nothing else.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from libs.contracts.catalog import (
    SEARCH_DOCS,
    BindAttemptIn,
    PriceIn,
    PricingLookupIn,
    PricingLookupOut,
    PricingOut,
    ProductAdminOut,
    ProductImageOut,
    ProductIn,
    ProductOut,
    ProductUpdateIn,
    ReservationOut,
    ReserveStockIn,
    ShippingMethodOut,
    ShippingQuoteOut,
    StockCheckIn,
    StockCheckOut,
    StockLevelOut,
    StockSetIn,
    TaxRateOut,
    TaxRatesIn,
    TranslationIn,
    TranslationOut,
)
from libs.contracts.common import Page
from libs.runtime.auth import require_service_token
from libs.runtime.problems import InvalidInput, NotFound
from services.catalog.domain import image_refused
from services.catalog.service import MAX_PAGE_SIZE, CatalogService

IMMUTABLE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
# Multipart framing around an image: a generous allowance on top of the image limit.
MULTIPART_OVERHEAD = 64 * 1024


async def catalog_service(request: Request) -> CatalogService:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    service: CatalogService = request.app.state.deps.service
    return service


Catalog = Annotated[CatalogService, Depends(catalog_service)]
Locale = Annotated[
    str | None,
    Query(
        max_length=35, description="BCP 47 locale, e.g. `de` or `fr-CH`; default: Accept-Language."
    ),
]
AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]


# ---------------------------------------------------------------------------- public reads

public = APIRouter(tags=["products"])


@public.get("/products", response_model=Page[ProductOut])
async def list_products(
    catalog: Catalog,
    locale: Locale = None,
    accept_language: AcceptLanguage = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    active: Annotated[
        bool, Query(description="true: for sale now (active, with an active price).")
    ] = True,
    recurring: Annotated[
        bool | None,
        Query(description="true: with a recurring price; false: with a one-off price."),
    ] = None,
    q: Annotated[str | None, Query(description=SEARCH_DOCS["q"])] = None,
    shippable: Annotated[bool | None, Query(description=SEARCH_DOCS["shippable"])] = None,
    price_min: Annotated[int | None, Query(description=SEARCH_DOCS["price_min"])] = None,
    price_max: Annotated[int | None, Query(description=SEARCH_DOCS["price_max"])] = None,
    currency: Annotated[str | None, Query(description=SEARCH_DOCS["currency"])] = None,
    sort: Annotated[str | None, Query(description=SEARCH_DOCS["sort"])] = None,
) -> Page[ProductOut]:
    """Products in key order, with their active prices, images (primary first) and texts;
    with a search parameter, the products found in the sort asked for."""
    return await catalog.list_products(
        locale=locale,
        accept_language=accept_language,
        limit=limit,
        cursor=cursor,
        active=active,
        recurring=recurring,
        q=q,
        shippable=shippable,
        price_min=price_min,
        price_max=price_max,
        currency=currency,
        sort=sort,
    )


@public.get("/products/{key}", response_model=ProductOut)
async def get_product(
    key: str, catalog: Catalog, locale: Locale = None, accept_language: AcceptLanguage = None
) -> ProductOut:
    """One product by key (404 `product_not_found`); `active` says whether it is for sale."""
    return await catalog.get_product(key=key, locale=locale, accept_language=accept_language)


Country = Annotated[str, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2.")]
Currency = Annotated[str, Query(min_length=3, max_length=3, description="ISO 4217.")]


@public.get("/shipping-methods", response_model=Page[ShippingMethodOut], tags=["shipping"])
async def list_shipping_methods(
    catalog: Catalog,
    country: Country,
    currency: Currency,
    locale: Locale = None,
    accept_language: AcceptLanguage = None,
) -> Page[ShippingMethodOut]:
    """The methods that ship to a country in a currency, with their price there."""
    items = await catalog.shipping.list_shipping_methods(
        country=country, currency=currency, locale=locale, accept_language=accept_language
    )
    return Page[ShippingMethodOut](items=items)


media = APIRouter(tags=["media"])


@media.api_route("/media/{path:path}", methods=["GET", "HEAD"], response_class=FileResponse)
async def get_media(path: str, request: Request) -> FileResponse:
    """A product image or thumbnail; names are content hashes, so they are cached for good."""
    target = media_file(request.app.state.deps.service.media.media_root, path)
    if target is None:
        raise NotFound("no such file", code="media_not_found")
    return FileResponse(
        target,
        media_type=MEDIA_TYPES[target.suffix.lower()],
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


def media_file(root: Path, path: str) -> Path | None:
    """The file `path` names inside `root`, or None: never a hidden file or one outside it."""
    parts = PurePosixPath(path).parts
    if (
        not parts
        or path.startswith("/")
        or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p for p in parts)
        or PurePosixPath(path).suffix.lower() not in MEDIA_TYPES
    ):
        return None
    base = root.resolve()
    target = base.joinpath(*parts).resolve()  # symlinks followed, then checked to stay inside
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


# ---------------------------------------------------------------------------- internal reads

internal = APIRouter(prefix="/internal", tags=["internal"])


@internal.post("/pricings/lookup", response_model=PricingLookupOut)
async def lookup_pricings(body: PricingLookupIn, catalog: Catalog) -> PricingLookupOut:
    """Many prices in one call, named in `locale`; `active` false if price or product is not.
    With `country`, also the tax rates that apply to them there."""
    return await catalog.lookup_pricings(ids=body.ids, locale=body.locale, country=body.country)


@internal.get("/tax-rates", response_model=list[TaxRateOut])
async def get_tax_rates(
    catalog: Catalog,
    country: Annotated[str, Query(min_length=1, max_length=3, description="ISO 3166-1 alpha-2.")],
    tax_code: Annotated[str | None, Query(max_length=64)] = None,
) -> list[TaxRateOut]:
    """The country's rates with this tax code, or its general rates if none has the code."""
    return await catalog.get_tax_rates(country=country, tax_code=tax_code)


@internal.get("/shipping-methods/{code}", response_model=ShippingQuoteOut)
async def get_shipping_quote(
    code: Annotated[str, PathParam(min_length=1, max_length=64)],
    catalog: Catalog,
    country: Country,
    currency: Currency,
    locale: Locale = None,
) -> ShippingQuoteOut:
    """One method for an order, with the destination's tax rates for its tax code; 422
    `shipping_unavailable` when it does not ship there in that currency."""
    return await catalog.shipping.get_shipping_quote(
        code=code, country=country, currency=currency, locale=locale
    )


OrderId = Annotated[str, PathParam(min_length=1, max_length=64)]


@internal.post("/stock/check", response_model=StockCheckOut, tags=["stock"])
async def check_stock(body: StockCheckIn, catalog: Catalog) -> StockCheckOut:
    """Whether these quantities can be bought now (`short` names the products that cannot)."""
    return await catalog.stock.check_stock(lines=body.lines)


@internal.post("/stock/reservations", response_model=ReservationOut, tags=["stock"])
async def reserve_stock(body: ReserveStockIn, catalog: Catalog) -> ReservationOut:
    """Hold an order's quantities, all lines or none (409 `out_of_stock` naming the products);
    idempotent per order."""
    return await catalog.stock.reserve_stock(order_id=body.order_id, lines=body.lines)


@internal.put(
    "/stock/reservations/{order_id}/attempt", response_model=ReservationOut, tags=["stock"]
)
async def bind_stock_attempt(
    order_id: OrderId, body: BindAttemptIn, catalog: Catalog
) -> ReservationOut:
    """Bind the hold to the payment attempt it now waits for."""
    return await catalog.stock.bind_attempt(order_id=order_id, attempt_id=body.attempt_id)


@internal.post(
    "/stock/reservations/{order_id}/release", response_model=ReservationOut, tags=["stock"]
)
async def release_stock(order_id: OrderId, catalog: Catalog) -> ReservationOut:
    """Give the order's held stock back (idempotent)."""
    return await catalog.stock.release_stock(order_id=order_id)


@internal.post(
    "/stock/reservations/{order_id}/commit", response_model=ReservationOut, tags=["stock"]
)
async def commit_stock(order_id: OrderId, catalog: Catalog) -> ReservationOut:
    """The order is paid: its reservation is sold (lines no longer held: `backordered`)."""
    return await catalog.stock.commit_stock(order_id=order_id)


# ---------------------------------------------------------------------------- write API

admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_service_token)])


@admin.post("/products", status_code=201, response_model=ProductAdminOut)
async def create_product(body: ProductIn, catalog: Catalog) -> ProductAdminOut:
    """Create a product with texts and prices (409 `product_exists` for a known key)."""
    return await catalog.create_product(product=body)


@admin.get("/products/{key}", response_model=ProductAdminOut)
async def get_product_admin(key: str, catalog: Catalog) -> ProductAdminOut:
    """A product with all its texts, every price (inactive too) and its images."""
    return await catalog.get_product_admin(key=key)


@admin.patch("/products/{key}", response_model=ProductAdminOut)
async def update_product(key: str, body: ProductUpdateIn, catalog: Catalog) -> ProductAdminOut:
    """Change tax code, shipping or active flag; fields not given stay as they are."""
    return await catalog.update_product(key=key, changes=body)


@admin.get("/products/{key}/stock", response_model=StockLevelOut, tags=["stock"])
async def get_stock(key: str, catalog: Catalog) -> StockLevelOut:
    """A product's stock: on hand, reserved, available."""
    return await catalog.stock.get_stock(key=key)


@admin.put("/products/{key}/stock", response_model=StockLevelOut, tags=["stock"])
async def set_stock(key: str, body: StockSetIn, catalog: Catalog) -> StockLevelOut:
    """Set the units on hand (and start tracking); held reservations stay held."""
    return await catalog.stock.set_on_hand(
        key=key, on_hand=body.on_hand, tracked=body.tracked, actor=body.actor
    )


@admin.put("/products/{key}/translations/{locale}", response_model=TranslationOut)
async def put_translation(
    key: str, locale: str, body: TranslationIn, catalog: Catalog
) -> TranslationOut:
    """Set the product's texts in one locale."""
    return await catalog.put_translation(key=key, locale=locale, translation=body)


@admin.delete("/products/{key}/translations/{locale}", status_code=204, response_class=Response)
async def delete_translation(key: str, locale: str, catalog: Catalog) -> Response:
    """Remove the product's texts in one locale (not the last one)."""
    await catalog.delete_translation(key=key, locale=locale)
    return Response(status_code=204)


@admin.post("/products/{key}/prices", status_code=201, response_model=PricingOut)
async def add_price(key: str, body: PriceIn, catalog: Catalog) -> PricingOut:
    """Add a price."""
    return await catalog.add_price(key=key, price=body)


@admin.put("/products/{key}/prices/{pricing_id}", response_model=PricingOut)
async def change_price(key: str, pricing_id: str, body: PriceIn, catalog: Catalog) -> PricingOut:
    """Change a price: same id if it was never sold, else a new price replacing it."""
    return await catalog.change_price(key=key, pricing_id=pricing_id, price=body)


@admin.post("/products/{key}/prices/{pricing_id}/deactivate", response_model=PricingOut)
async def deactivate_price(key: str, pricing_id: str, catalog: Catalog) -> PricingOut:
    """Stop selling a price."""
    return await catalog.deactivate_price(key=key, pricing_id=pricing_id)


UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "position": {"type": "integer", "minimum": 0},
                    },
                }
            }
        },
    }
}


@admin.post(
    "/products/{key}/images",
    status_code=201,
    response_model=ProductImageOut,
    openapi_extra=UPLOAD_SCHEMA,
)
async def upload_image(key: str, request: Request, catalog: Catalog) -> ProductImageOut:
    """Upload an image (multipart `file`, optional `position`); JPEG, PNG, WebP or GIF."""
    limit = catalog.rules.max_bytes
    declared = request.headers.get("content-length", "")
    # Refuse an oversized upload before its body is read and spooled.
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise image_refused("image_too_large", f"the upload is over the {limit} byte limit")
    try:
        form = await request.form(max_files=1, max_fields=5)
    except HTTPException as exc:  # starlette's answer to a malformed multipart body
        raise InvalidInput.for_field("file", f"not a multipart upload ({exc.detail})") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput.for_field("file", "a multipart file field `file` is required")
        data = await upload.read(limit + 1)
        raw_position = form.get("position")
    finally:
        await form.close()
    position = None
    if isinstance(raw_position, str) and raw_position.strip():
        if not raw_position.strip().isdigit():
            raise InvalidInput.for_field("position", "must be a whole number, 0 or more")
        position = int(raw_position)
    return await catalog.upload_image(key=key, data=data, position=position)


@admin.delete("/products/{key}/images/{image_id}", status_code=204, response_class=Response)
async def delete_image(key: str, image_id: str, catalog: Catalog) -> Response:
    """Remove an image and its files."""
    await catalog.delete_image(key=key, image_id=image_id)
    return Response(status_code=204)


@admin.put("/tax-rates/{country_code}", response_model=list[TaxRateOut])
async def put_tax_rates(country_code: str, body: TaxRatesIn, catalog: Catalog) -> list[TaxRateOut]:
    """Replace all tax rates of a country; unchanged rates keep their ids."""
    return await catalog.put_tax_rates(country=country_code, rates=body.rates)


ROUTERS = (public, internal, admin)
PUBLIC_ROUTERS = (media,)  # product images: no credential, the gateway serves them to anyone
