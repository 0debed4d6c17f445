"""One typed client per service. The gateway reaches services only through these."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from libs.contracts.cart import AddLineIn, CartOut, FrozenCart, MergeIn, MergeOut, SetQuantityIn
from libs.contracts.catalog import (
    BindAttemptIn,
    ProductOut,
    ReservationOut,
    ReserveStockIn,
    ShippingMethodOut,
    StockCheckIn,
    StockCheckOut,
    StockLevelOut,
    StockLineIn,
    StockSetIn,
)
from libs.contracts.common import Page, Principal
from libs.contracts.orders import CancelOrderIn, FulfilOrderIn, OrderOut, PrepareOrderIn
from libs.contracts.payments import (
    CreateBillingIn,
    CustomerOut,
    OperatorRefundIn,
    PaymentAttemptOut,
    PaymentCheckIn,
    PaymentOut,
    PortalIn,
    PortalOut,
    RefundOut,
    StartPaymentIn,
    SubscriptionOut,
)
from libs.runtime.http import Passthrough, ServiceClient

_customers = TypeAdapter(list[CustomerOut])
_subscriptions = TypeAdapter(list[SubscriptionOut])
_attempts = TypeAdapter(list[PaymentAttemptOut])


def _seg(value: str) -> str:
    """One URL path segment: whatever a caller sent, it cannot reach another path or query."""
    return quote(value, safe="")


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class CatalogClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def list_products(
        self, *, locale: str | None, accept_language: str | None, **filters: Any
    ) -> Page[ProductOut]:
        headers = {"accept-language": accept_language} if accept_language else None
        return await self.http.call(
            "GET",
            "/products",
            Page[ProductOut],
            params=_params(locale=locale, **filters),
            headers=headers,
        )

    async def get_product(
        self, key: str, *, locale: str | None, accept_language: str | None
    ) -> ProductOut:
        headers = {"accept-language": accept_language} if accept_language else None
        return await self.http.call(
            "GET",
            f"/products/{_seg(key)}",
            ProductOut,
            params=_params(locale=locale),
            headers=headers,
        )

    async def shipping_methods(
        self, *, country: str, currency: str, locale: str | None, accept_language: str | None
    ) -> Page[ShippingMethodOut]:
        headers = {"accept-language": accept_language} if accept_language else None
        return await self.http.call(
            "GET",
            "/shipping-methods",
            Page[ShippingMethodOut],
            params=_params(country=country, currency=currency, locale=locale),
            headers=headers,
        )

    async def check_stock(self, lines: list[StockLineIn]) -> StockCheckOut:
        body = StockCheckIn(lines=lines).model_dump()
        return await self.http.call("POST", "/internal/stock/check", StockCheckOut, json=body)

    async def reserve_stock(self, order_id: str, lines: list[StockLineIn]) -> ReservationOut:
        body = ReserveStockIn(order_id=order_id, lines=lines).model_dump()
        return await self.http.call(
            "POST", "/internal/stock/reservations", ReservationOut, json=body
        )

    async def bind_stock_attempt(self, order_id: str, attempt_id: str) -> ReservationOut:
        return await self.http.call(
            "PUT",
            f"/internal/stock/reservations/{_seg(order_id)}/attempt",
            ReservationOut,
            json=BindAttemptIn(attempt_id=attempt_id).model_dump(),
        )

    async def release_stock(self, order_id: str) -> ReservationOut:
        return await self.http.call(
            "POST", f"/internal/stock/reservations/{_seg(order_id)}/release", ReservationOut
        )

    async def set_stock(self, key: str, body: StockSetIn) -> StockLevelOut:
        return await self.http.call(
            "PUT", f"/admin/products/{_seg(key)}/stock", StockLevelOut, json=body.model_dump()
        )

    async def get_stock(self, key: str) -> StockLevelOut:
        return await self.http.call("GET", f"/admin/products/{_seg(key)}/stock", StockLevelOut)

    async def media(self, path: str) -> httpx.Response:
        """A public media file; `path` was checked by gateway/security.py. No credential goes."""
        return await self.http.request("GET", f"/media/{quote(path)}", credential=False)


class CartClient:
    """The cart routes answer the cart service's own JSON (a `CartOut`) as it came."""

    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def summary(self, principal: Principal, *, locale: str | None) -> Passthrough[CartOut]:
        return await self.http.passthrough(
            "GET", "/carts/current", CartOut, params=_params(locale=locale), principal=principal
        )

    async def add_line(
        self, principal: Principal, line: AddLineIn, *, locale: str | None
    ) -> Passthrough[CartOut]:
        return await self.http.passthrough(
            "POST",
            "/carts/current/lines",
            CartOut,
            json=line.model_dump(),
            params=_params(locale=locale),
            principal=principal,
        )

    async def set_quantity(
        self, principal: Principal, line_id: str, body: SetQuantityIn, *, locale: str | None
    ) -> Passthrough[CartOut]:
        return await self.http.passthrough(
            "PATCH",
            f"/carts/current/lines/{_seg(line_id)}",
            CartOut,
            json=body.model_dump(),
            params=_params(locale=locale),
            principal=principal,
        )

    async def remove_line(
        self, principal: Principal, line_id: str, *, locale: str | None
    ) -> Passthrough[CartOut]:
        return await self.http.passthrough(
            "DELETE",
            f"/carts/current/lines/{_seg(line_id)}",
            CartOut,
            params=_params(locale=locale),
            principal=principal,
        )

    async def merge(self, *, anonymous_id: str, user_id: str) -> MergeOut:
        body = MergeIn(anonymous_id=anonymous_id, user_id=user_id)
        return await self.http.call("POST", "/carts/merge", MergeOut, json=body.model_dump())

    async def checkout(self, principal: Principal, *, order_id: str) -> FrozenCart:
        return await self.http.call(
            "POST",
            "/carts/current/checkout",
            FrozenCart,
            json={"order_id": order_id},
            principal=principal,
        )


class OrdersClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def prepare_order(self, principal: Principal, body: PrepareOrderIn) -> OrderOut:
        return await self.http.call(
            "POST", "/orders", OrderOut, json=body.model_dump(mode="json"), principal=principal
        )

    async def list_orders(
        self, principal: Principal, *, paid: str | None, limit: int | None, cursor: str | None
    ) -> Page[OrderOut]:
        return await self.http.call(
            "GET",
            "/orders",
            Page[OrderOut],
            params=_params(paid=paid, limit=limit, cursor=cursor),
            principal=principal,
        )

    async def get_order(self, principal: Principal, order_id: str) -> OrderOut:
        return await self.http.call(
            "GET", f"/orders/{_seg(order_id)}", OrderOut, principal=principal
        )

    async def cancel_order(self, principal: Principal, order_id: str) -> OrderOut:
        return await self.http.call(
            "POST", f"/orders/{_seg(order_id)}/cancel", OrderOut, principal=principal
        )

    async def cancel_order_as_operator(
        self, order_id: str, *, actor: str, reason: str | None
    ) -> OrderOut:
        return await self.http.call(
            "POST",
            f"/admin/orders/{_seg(order_id)}/cancel",
            OrderOut,
            json=CancelOrderIn(actor=actor, reason=reason).model_dump(mode="json"),
        )

    # Operators' routes: no principal (the admin API checked the operator's role).

    async def list_all_orders(self, **filters: Any) -> Page[OrderOut]:
        return await self.http.call(
            "GET", "/admin/orders", Page[OrderOut], params=_params(**filters)
        )

    async def get_any_order(self, order_id: str) -> OrderOut:
        return await self.http.call("GET", f"/admin/orders/{_seg(order_id)}", OrderOut)

    async def get_order_by_number(self, number: str) -> OrderOut:
        return await self.http.call("GET", f"/admin/orders/by-number/{_seg(number)}", OrderOut)

    async def fulfil_order(self, order_id: str, body: FulfilOrderIn) -> OrderOut:
        return await self.http.call(
            "POST",
            f"/admin/orders/{_seg(order_id)}/fulfillments",
            OrderOut,
            json=body.model_dump(mode="json"),
        )


class PaymentsClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def create_customer(self, principal: Principal, body: CreateBillingIn) -> CustomerOut:
        return await self.http.call(
            "POST",
            "/customers",
            CustomerOut,
            json=body.model_dump(mode="json"),
            principal=principal,
        )

    async def customers(self, principal: Principal) -> list[CustomerOut]:
        return await self.http.call("GET", "/customers", _customers, principal=principal)

    async def organization_customers(self, principal: Principal, org_id: str) -> list[CustomerOut]:
        return await self.http.call(
            "GET", f"/organizations/{_seg(org_id)}/customers", _customers, principal=principal
        )

    async def customer(self, principal: Principal, customer_id: str) -> CustomerOut:
        return await self.http.call(
            "GET", f"/customers/{_seg(customer_id)}", CustomerOut, principal=principal
        )

    async def default_customer(self, principal: Principal) -> CustomerOut:
        return await self.http.call("GET", "/customers/default", CustomerOut, principal=principal)

    async def delete_customer(self, principal: Principal, customer_id: str) -> None:
        await self.http.request("DELETE", f"/customers/{_seg(customer_id)}", principal=principal)

    async def set_default(self, principal: Principal, customer_id: str) -> CustomerOut:
        return await self.http.call(
            "POST", f"/customers/{_seg(customer_id)}/default", CustomerOut, principal=principal
        )

    async def check_payment(self, principal: Principal, body: PaymentCheckIn) -> None:
        await self.http.request(
            "POST", "/payments/check", json=body.model_dump(mode="json"), principal=principal
        )

    async def start_payment(self, principal: Principal, body: StartPaymentIn) -> PaymentOut:
        return await self.http.call(
            "POST",
            "/payments",
            PaymentOut,
            json=body.model_dump(mode="json"),
            principal=principal,
        )

    async def order_payments(self, principal: Principal, order_id: str) -> list[PaymentAttemptOut]:
        return await self.http.call(
            "GET", f"/orders/{_seg(order_id)}/payments", _attempts, principal=principal
        )

    async def subscriptions(self, principal: Principal) -> list[SubscriptionOut]:
        return await self.http.call("GET", "/subscriptions", _subscriptions, principal=principal)

    async def cancel_subscription(
        self, principal: Principal, subscription_id: str
    ) -> SubscriptionOut:
        return await self.http.call(
            "POST",
            f"/subscriptions/{_seg(subscription_id)}/cancel",
            SubscriptionOut,
            principal=principal,
        )

    async def subscription_portal(
        self, principal: Principal, subscription_id: str, return_url: str
    ) -> PortalOut:
        return await self.http.call(
            "POST",
            f"/subscriptions/{_seg(subscription_id)}/portal",
            PortalOut,
            json=PortalIn(return_url=return_url).model_dump(mode="json"),
            principal=principal,
        )

    async def refund_order(self, order_id: str, body: OperatorRefundIn) -> RefundOut:
        """An operator's refund (the service credential only: the caller is an admin)."""
        return await self.http.call(
            "POST",
            f"/admin/orders/{_seg(order_id)}/refunds",
            RefundOut,
            json=body.model_dump(mode="json"),
        )

    async def forward(
        self, method: str, path: str, *, body: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        """Pass a public request (webhook, hosted checkout page) through unchanged; the
        hosted page's redirects (back to the shop) go to the browser as they are."""
        return await self.http.request(method, path, content=body, headers=headers, redirects=True)


class Clients:
    """The four service clients, built from the process's service directory."""

    def __init__(self, directory: Any) -> None:
        self.catalog = CatalogClient(directory.client("catalog"))
        self.cart = CartClient(directory.client("cart"))
        self.orders = OrdersClient(directory.client("orders"))
        self.payments = PaymentsClient(directory.client("payments"))
        self.directory = directory
