"""`/api/store/*` except the cart: products, checkout, orders, customers, subscriptions, session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from gateway.deps import CurrentCaller, CurrentLocale, Deps
from gateway.idempotency import Idempotent
from gateway.security import check_return_urls, public_links
from libs.contracts.cart import MergeOut
from libs.contracts.catalog import (
    MAX_SEARCH_QUERY_LENGTH,
    SEARCH_DOCS,
    ProductOut,
    ProductSearchParams,
    ProductSort,
    ShippingMethodOut,
)
from libs.contracts.common import ID_PATTERN, KEY_PATTERN, Page
from libs.contracts.orders import OrderOut
from libs.contracts.payments import CustomerOut, PortalIn, PortalOut, SubscriptionOut
from libs.contracts.store import CheckoutIn, CheckoutOut, PayIn, StoreOrderOut

router = APIRouter(prefix="/api/store")

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the previous page.")
]


@router.get("/products", tags=["catalog"], summary="List products")
async def list_products(
    deps: Deps,
    locale: CurrentLocale,
    limit: Limit = 20,
    cursor: Cursor = None,
    recurring: Annotated[
        bool | None, Query(description="Only recurring (or one-off) prices.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=MAX_SEARCH_QUERY_LENGTH, description=SEARCH_DOCS["q"])
    ] = None,
    shippable: Annotated[bool | None, Query(description=SEARCH_DOCS["shippable"])] = None,
    price_min: Annotated[int | None, Query(ge=0, description=SEARCH_DOCS["price_min"])] = None,
    price_max: Annotated[int | None, Query(ge=0, description=SEARCH_DOCS["price_max"])] = None,
    currency: Annotated[
        str | None, Query(min_length=3, max_length=3, description=SEARCH_DOCS["currency"])
    ] = None,
    sort: Annotated[ProductSort | None, Query(description=SEARCH_DOCS["sort"])] = None,
) -> Page[ProductOut]:
    """Active products with their prices and images (primary first), in the caller's locale;
    with `q`, filters or `sort`, the products found."""
    search = ProductSearchParams(
        q=q,
        shippable=shippable,
        price_min=price_min,
        price_max=price_max,
        currency=currency,
        sort=sort,
    )
    return await deps.interactor.list_products(
        locale=locale, limit=limit, cursor=cursor, recurring=recurring, search=search
    )


@router.get("/products/{key}", tags=["catalog"], summary="Get a product")
async def get_product(
    key: Annotated[str, Path(min_length=1, max_length=128, pattern=KEY_PATTERN)],
    deps: Deps,
    locale: CurrentLocale,
) -> ProductOut:
    """One product by its key."""
    return await deps.interactor.get_product(key, locale=locale)


@router.get("/shipping-methods", tags=["catalog"], summary="List shipping methods")
async def list_shipping_methods(
    deps: Deps,
    locale: CurrentLocale,
    country: Annotated[
        str, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. DE.")
    ],
    currency: Annotated[str, Query(min_length=3, max_length=3, description="ISO 4217.")],
) -> Page[ShippingMethodOut]:
    """The methods that ship to a country in a currency, with their price before tax and the
    amount from which they are free."""
    return await deps.interactor.list_shipping_methods(
        country=country, currency=currency, locale=locale
    )


@router.post(
    "/checkout", tags=["checkout"], summary="Check out the cart", dependencies=[Idempotent]
)
async def checkout(
    body: CheckoutIn, deps: Deps, caller: CurrentCaller, locale: CurrentLocale
) -> CheckoutOut:
    """Validate billing, prepare the order from the cart and start a payment. Retrying with
    the same cart returns the same order."""
    check_return_urls(deps.settings, body.success_url, body.cancel_url)
    return public_links(await deps.interactor.checkout(caller, body, locale=locale), deps.settings)


@router.get("/orders", tags=["orders"], summary="The caller's orders")
async def list_orders(
    deps: Deps,
    caller: CurrentCaller,
    limit: Limit = 20,
    cursor: Cursor = None,
    paid: Annotated[bool | None, Query(description="Only paid (true) or unpaid (false).")] = None,
) -> Page[OrderOut]:
    """The caller's orders, newest first."""
    paid_filter = None if paid is None else ("paid" if paid else "unpaid")
    return await deps.interactor.get_user_orders(
        caller, paid=paid_filter, limit=limit, cursor=cursor
    )


@router.get("/orders/{order_id}", tags=["orders"], summary="One order")
async def get_order(order_id: Id, deps: Deps, caller: CurrentCaller) -> StoreOrderOut:
    """One order of the caller, with its payment attempt's status (`processing` while a delayed
    payment is on its way)."""
    return await deps.interactor.get_order(caller, order_id)


@router.post("/orders/{order_id}/cancel", tags=["orders"], summary="Cancel an unpaid order")
async def cancel_order(order_id: Id, deps: Deps, caller: CurrentCaller) -> StoreOrderOut:
    """Cancel one of the caller's orders while it is unpaid: its open checkouts close and its
    stock is released. 409 `order_already_paid`, `order_canceled` or `payment_processing`."""
    return await deps.interactor.cancel_order(caller, order_id)


@router.post(
    "/orders/{order_id}/pay", tags=["orders"], summary="Pay for an order", dependencies=[Idempotent]
)
async def pay_for_order(
    order_id: Id, body: PayIn, deps: Deps, caller: CurrentCaller
) -> CheckoutOut:
    """A new payment attempt for an unpaid order; 409 when it is already paid."""
    check_return_urls(deps.settings, body.success_url, body.cancel_url)
    return public_links(await deps.interactor.pay_for_order(caller, order_id, body), deps.settings)


@router.get("/subscriptions", tags=["subscriptions"], summary="The caller's subscriptions")
async def list_subscriptions(deps: Deps, caller: CurrentCaller) -> list[SubscriptionOut]:
    """Subscriptions started by the caller's orders."""
    return await deps.interactor.get_subscriptions(caller)


@router.post("/subscriptions/{subscription_id}/cancel", tags=["subscriptions"], summary="Cancel")
async def cancel_subscription(
    subscription_id: Id, deps: Deps, caller: CurrentCaller
) -> SubscriptionOut:
    """Cancel at the end of the current period."""
    return await deps.interactor.cancel_subscription(caller, subscription_id)


@router.post(
    "/subscriptions/{subscription_id}/portal", tags=["subscriptions"], summary="Manage billing"
)
async def subscription_portal(
    subscription_id: Id, deps: Deps, caller: CurrentCaller, body: PortalIn | None = None
) -> PortalOut:
    """A link to the billing portal for one of the caller's subscriptions: change the card,
    pay a past-due invoice, cancel. `return_url` defaults to the shop."""
    return_url = (body.return_url if body else None) or f"{deps.settings.public_origin.url}/shop/"
    check_return_urls(deps.settings, return_url)
    out = await deps.interactor.subscription_portal(caller, subscription_id, return_url)
    if out.url.startswith("/") and not out.url.startswith("//"):
        out = PortalOut(url=deps.settings.public_origin.url + out.url)
    return out


@router.get("/customers", tags=["customers"], summary="The caller's customers")
async def get_customers_for_user(deps: Deps, caller: CurrentCaller) -> list[CustomerOut]:
    """Billing identities of the caller."""
    return await deps.interactor.get_customers_for_user(caller)


@router.get(
    "/organizations/{org_id}/customers", tags=["customers"], summary="An organization's customers"
)
async def get_customers_for_organization(
    org_id: Id, deps: Deps, caller: CurrentCaller
) -> list[CustomerOut]:
    """Billing identities of an organization; members only."""
    return await deps.interactor.get_customers_for_organization(caller, org_id)


@router.delete(
    "/customers/{customer_id}",
    tags=["customers"],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a customer",
)
async def delete_customer(customer_id: Id, deps: Deps, caller: CurrentCaller) -> Response:
    """Delete one of the caller's customers."""
    await deps.interactor.delete_customer(caller, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/customers/{customer_id}/default", tags=["customers"], summary="Set the default")
async def set_default_customer(customer_id: Id, deps: Deps, caller: CurrentCaller) -> CustomerOut:
    """Make this customer the caller's default."""
    return await deps.interactor.set_default_customer(caller, customer_id)


@router.post("/session/merge", tags=["session"], summary="Merge the anonymous shopper")
async def merge_session(deps: Deps, caller: CurrentCaller, locale: CurrentLocale) -> MergeOut:
    """anonymous_to_user, explicitly: with a user token and the anonymous cookie, moves the
    anonymous cart, customers and orders to the user and clears the cookie. Without a cookie
    (already merged) it changes nothing and says `merged: false`."""
    caller.require_user()
    if caller.merge_result is not None:
        return caller.merge_result
    cart = await deps.interactor.get_cart_summarized(caller, locale=locale)
    return MergeOut(merged=False, cart=cart.parse())
