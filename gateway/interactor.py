"""StoreInteractor: the only place that composes the services into the store's workflows."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

import babel
import structlog

from gateway.clients import Clients
from gateway.identity import AnonymousIdentityMerged, Caller
from gateway.stock import check_cart_stock, check_line_stock, order_stock_lines
from libs.contracts.cart import AddLineIn, CartOut, MergeOut, SetQuantityIn
from libs.contracts.catalog import ProductOut, ProductSearchParams, ShippingMethodOut
from libs.contracts.common import Page, Principal
from libs.contracts.orders import OrderOut, PrepareOrderIn, ShippingChoice
from libs.contracts.payments import (
    BillingDetails,
    CreateBillingIn,
    CustomerOut,
    PaymentAttemptOut,
    PaymentCheckIn,
    PaymentLine,
    PaymentOut,
    PortalOut,
    ShippingAddress,
    StartPaymentIn,
    SubscriptionOut,
)
from libs.contracts.store import (
    CheckoutIn,
    CheckoutOut,
    CheckoutShippingIn,
    OrderPaymentOut,
    PayIn,
    StoreOrderOut,
)
from libs.runtime.http import Passthrough
from libs.runtime.problems import Conflict, InvalidInput, NotFound, ProblemError

log = structlog.get_logger(__name__)


# Answers of a payment that could not start because another one of the order is under way or
# has paid: the order's stock hold is that payment's, so checkout does not give it back.
_HOLD_BELONGS_TO_A_PAYMENT = frozenset({"payment_processing", "order_already_paid"})


class NoCustomer(ProblemError):
    status, code, title = 422, "no_customer", "No billing information"


class ShippingRequired(ProblemError):
    status, code, title = 422, "shipping_required", "This order needs shipping"


class ShippingNotRequired(ProblemError):
    status, code, title = 422, "shipping_not_required", "Nothing in this order is shipped"


class ShippingUnavailable(ProblemError):
    status, code, title = 422, "shipping_unavailable", "This shipping method cannot ship there"


@dataclass(frozen=True)
class Locale:
    """The caller's language: an explicit ?locale=, else the Accept-Language header."""

    explicit: str | None
    accept_language: str | None
    default: str

    @property
    def for_services(self) -> str:
        """The explicit locale (checked by the services), else the first language of the
        header that is a real locale; a header naming none falls back to the default."""
        if self.explicit:
            return self.explicit
        if self.accept_language:
            return _first_known_locale(self.accept_language) or self.default
        return self.default


@functools.lru_cache(maxsize=2048)
def _first_known_locale(accept_language: str) -> str | None:
    # Browsers send what the user configured, which may be anything: a header is a hint, so an
    # unknown language is skipped rather than refused.
    ranked = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-quality, position, tag.strip()))
    for _, _, tag in sorted(ranked):
        if not tag or tag == "*" or len(tag) > 35:
            continue
        try:
            parsed = babel.Locale.parse(tag.replace("-", "_"))
        except (ValueError, TypeError, babel.UnknownLocaleError):
            continue
        # The canonical tag, not the header's spelling: POSIX-style values such as
        # `de_DE.UTF-8` or `de@euro` carry a charset or modifier the services do not take.
        return "_".join(part for part in (parsed.language, parsed.script, parsed.territory) if part)
    return None


def _check_shipping_needed(cart: CartOut, shipping: CheckoutShippingIn | None) -> None:
    """Shipping is given exactly when the cart holds goods to ship (an empty cart is left to
    the freeze, which answers for it)."""
    if not any(line.available for line in cart.lines):
        return
    if cart.requires_shipping and shipping is None:
        raise ShippingRequired(
            "The cart holds goods to ship: give `shipping` with a method (and an address, "
            "unless it is the billing address).",
            errors=InvalidInput.for_field("shipping", "required for shippable goods").errors,
        )
    if not cart.requires_shipping and shipping is not None:
        raise ShippingNotRequired(
            "Nothing in the cart is shipped: leave `shipping` out.",
            errors=InvalidInput.for_field("shipping", "nothing to ship").errors,
        )


def _with_payment(order: OrderOut, attempts: list[PaymentAttemptOut]) -> StoreOrderOut:
    """The order with the payment attempt that tells the shopper most: a payment on its way,
    else the one that paid, else the newest."""
    shown = next(
        (a for a in attempts if a.status == "processing"),
        next((a for a in attempts if a.status == "paid"), attempts[-1] if attempts else None),
    )
    payment = OrderPaymentOut(attempt_id=shown.attempt_id, status=shown.status) if shown else None
    return StoreOrderOut(**order.model_dump(), payment=payment)


class StoreInteractor:
    """The store's use cases, each a composition of service calls."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    # --- catalog ---------------------------------------------------------------------------

    async def list_products(
        self,
        *,
        locale: Locale,
        limit: int,
        cursor: str | None,
        recurring: bool | None,
        search: ProductSearchParams | None = None,
    ) -> Page[ProductOut]:
        """A page of active products with prices and images, texts in the caller's locale;
        with search parameters, the products the catalog finds for them."""
        found = search.query_params() if search is not None else {}
        return await self.clients.catalog.list_products(
            locale=locale.explicit,
            accept_language=locale.accept_language,
            limit=limit,
            cursor=cursor,
            recurring=None if recurring is None else str(recurring).lower(),
            **found,
        )

    async def get_product(self, key: str, *, locale: Locale) -> ProductOut:
        """One product by key."""
        return await self.clients.catalog.get_product(
            key, locale=locale.explicit, accept_language=locale.accept_language
        )

    async def list_shipping_methods(
        self, *, country: str, currency: str, locale: Locale
    ) -> Page[ShippingMethodOut]:
        """The shipping methods that ship to a country in a currency, with their prices."""
        return await self.clients.catalog.shipping_methods(
            country=country,
            currency=currency,
            locale=locale.explicit,
            accept_language=locale.accept_language,
        )

    # --- cart ------------------------------------------------------------------------------

    async def get_cart_summarized(self, caller: Caller, *, locale: Locale) -> Passthrough[CartOut]:
        """The caller's cart with names, prices, subtotals and totals; empty without identity."""
        if caller.user_id is None and caller.anonymous_id is None:
            return Passthrough.of(CartOut())
        return await self.clients.cart.summary(caller.principal, locale=locale.for_services)

    async def add_to_cart(
        self, caller: Caller, line: AddLineIn, *, locale: Locale
    ) -> Passthrough[CartOut]:
        """Add a line (or raise its quantity); a caller without identity gets an anonymous id."""
        caller.ensure_anonymous()
        if caller.user_id is None:
            caller.set_cookie = True  # refresh: the cookie's lifetime slides like the cart's
        await check_line_stock(self.clients, caller, line.pricing_id, add=line.quantity)
        return await self.clients.cart.add_line(caller.principal, line, locale=locale.for_services)

    async def update_line(
        self, caller: Caller, line_id: str, body: SetQuantityIn, *, locale: Locale
    ) -> Passthrough[CartOut]:
        """Set a line's quantity."""
        caller.require_any()
        await check_line_stock(self.clients, caller, None, line_id=line_id, quantity=body.quantity)
        return await self.clients.cart.set_quantity(
            caller.principal, line_id, body, locale=locale.for_services
        )

    async def remove_line_from_cart(
        self, caller: Caller, line_id: str, *, locale: Locale
    ) -> Passthrough[CartOut]:
        """Remove a line."""
        caller.require_any()
        return await self.clients.cart.remove_line(
            caller.principal, line_id, locale=locale.for_services
        )

    # --- identity --------------------------------------------------------------------------

    async def anonymous_to_user(self, *, anonymous_id: str, user_id: str) -> MergeOut:
        """Move the anonymous shopper's cart, customers and orders to the user (idempotent).

        The cart service merges the carts and publishes `identity.anonymous.merged.v1` in the
        same transaction; orders and payments re-own their data when they receive it.
        """
        result = await self.clients.cart.merge(anonymous_id=anonymous_id, user_id=user_id)
        log.info("identity.merged", user_id=user_id, merged=result.merged)
        return result

    # --- customers -------------------------------------------------------------------------

    async def create_billing(self, caller: Caller, body: CreateBillingIn) -> CustomerOut:
        """Create billing information (a customer) for the user, the shopper or an organization."""
        caller.ensure_anonymous()
        return await self.clients.payments.create_customer(caller.principal, body)

    async def get_customers_for_user(self, caller: Caller) -> list[CustomerOut]:
        """The caller's own customers."""
        caller.require_any()
        return await self.clients.payments.customers(caller.principal)

    async def get_customers_for_organization(
        self, caller: Caller, org_id: str
    ) -> list[CustomerOut]:
        """An organization's customers, for its members only."""
        caller.require_user()
        return await self.clients.payments.organization_customers(caller.principal, org_id)

    async def delete_customer(self, caller: Caller, customer_id: str) -> None:
        """Delete one of the caller's customers; the default passes to another."""
        caller.require_any()
        await self.clients.payments.delete_customer(caller.principal, customer_id)

    async def set_default_customer(self, caller: Caller, customer_id: str) -> CustomerOut:
        """Make a customer the caller's default."""
        caller.require_any()
        return await self.clients.payments.set_default(caller.principal, customer_id)

    # --- checkout and payment --------------------------------------------------------------

    async def checkout(self, caller: Caller, body: CheckoutIn, *, locale: Locale) -> CheckoutOut:
        """Cart → order → payment attempt. Every step is idempotent, so a retry completes it."""
        caller.require_any()
        principal = caller.principal
        # Freezing the cart cannot be undone, and its order can only be paid: a cart the
        # provider cannot charge is refused while it is still the shopper's to change (ADR 016).
        cart = await self._check_chargeable(principal, locale=locale)
        _check_shipping_needed(cart, body.shipping)
        await check_cart_stock(self.clients, cart)  # the reservation below is the real guard
        if cart.currency is not None and body.shipping and body.shipping.address is not None:
            await self._check_ships(body.shipping, body.shipping.address, cart.currency, locale)
        customer = await self._customer_for_checkout(caller, body)
        shipping = None
        if body.shipping is not None:
            address = body.shipping.address or ShippingAddress(
                **customer.address.model_dump(), name=customer.name
            )
            if cart.currency is not None and body.shipping.address is None:
                await self._check_ships(body.shipping, address, cart.currency, locale)
            shipping = ShippingChoice(method=body.shipping.method, address=address)
        frozen = await self.clients.cart.checkout(principal, order_id=str(uuid.uuid4()))
        order = await self.clients.orders.prepare_order(
            principal,
            PrepareOrderIn(
                order_id=frozen.order_id,
                cart_id=frozen.cart_id,
                owner=frozen.owner,
                customer_id=customer.id,
                billing=BillingDetails(
                    name=customer.name,
                    email=customer.email,
                    address=customer.address,
                    vat_id=customer.vat_id,
                ),
                locale=locale.for_services,
                currency=frozen.currency,
                lines=frozen.lines,
                shipping=shipping,
            ),
        )
        if not principal.owns(order.owner):
            # The anonymous shopper was merged into a user while this checkout ran: the order
            # is the user's now, and nothing of it (not even whose it is) goes to a cookie.
            raise AnonymousIdentityMerged("This order belongs to a user account; log in to pay.")
        payment = await self._pay_for_order(
            caller,
            order,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
            new_attempt=False,
        )
        return CheckoutOut(order=order, payment=payment)

    async def pay_for_order(self, caller: Caller, order_id: str, body: PayIn) -> CheckoutOut:
        """A new payment attempt for an unpaid order of the caller; 409 when already paid."""
        caller.require_any()
        order = await self.clients.orders.get_order(caller.principal, order_id)
        if order.paid is not None:
            raise Conflict("This order is already paid.", code="order_already_paid")
        if order.status == "canceled":
            raise Conflict("This order is canceled; it cannot be paid.", code="order_canceled")
        payment = await self._pay_for_order(
            caller,
            order,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
            new_attempt=True,
        )
        return CheckoutOut(order=order, payment=payment)

    async def _check_ships(
        self,
        shipping: CheckoutShippingIn,
        address: ShippingAddress,
        currency: str,
        locale: Locale,
    ) -> None:
        """Refuse a method that does not ship to the address's country in the cart's currency,
        while the cart can still be changed (orders checks it again when it prices it)."""
        country = address.country.strip().upper()
        offered = await self.clients.catalog.shipping_methods(
            country=country, currency=currency, locale=None, accept_language=None
        )
        if all(method.code != shipping.method for method in offered.items):
            raise ShippingUnavailable(
                f"Shipping method {shipping.method!r} does not ship to {country} in {currency}; "
                "GET /api/store/shipping-methods lists those that do.",
                errors=InvalidInput.for_field("shipping.method", "not available there").errors,
            )

    async def _check_chargeable(self, principal: Principal, *, locale: Locale) -> CartOut:
        """Raise the payment's 422 (too many lines, an amount too large...) for the open cart.

        It is checked on the cart's prices before tax; the order re-prices and taxes them, and
        `start_payment` checks that exact total again. An empty cart passes: the freeze then
        answers for it (nothing to buy, or the completion of a checkout that stopped halfway).
        """
        cart = (await self.clients.cart.summary(principal, locale=locale.for_services)).parse()
        lines = [
            PaymentLine(
                pricing_id=line.pricing_id,
                name=line.name,
                unit_amount=line.unit_amount,
                quantity=line.quantity,
                interval=line.interval,
                interval_count=line.interval_count,
            )
            for line in cart.lines
            if line.available
        ]
        if not lines or cart.currency is None:
            return cart
        await self.clients.payments.check_payment(
            principal,
            PaymentCheckIn(
                amount=sum(line.unit_amount * line.quantity for line in lines),
                currency=cart.currency,
                lines=lines,
            ),
        )
        return cart

    async def _customer_for_checkout(self, caller: Caller, body: CheckoutIn) -> CustomerOut:
        payments = self.clients.payments
        if body.billing is not None:
            return await payments.create_customer(
                caller.principal, CreateBillingIn(**body.billing.model_dump())
            )
        if body.customer_id is not None:
            return await payments.customer(caller.principal, body.customer_id)
        try:
            return await payments.default_customer(caller.principal)
        except ProblemError as exc:
            if exc.status == 404:
                raise NoCustomer(
                    "Give `billing` or `customer_id`, or create billing information first."
                ) from None
            raise

    async def _pay_for_order(
        self,
        caller: Caller,
        order: OrderOut,
        *,
        success_url: str,
        cancel_url: str,
        new_attempt: bool,
    ) -> PaymentOut:
        details = order.details
        lines = [
            PaymentLine(
                pricing_id=line["pricing_id"],
                name=line["name"],
                unit_amount=line["unit_amount"],
                quantity=line["quantity"],
                interval=line.get("interval"),
                interval_count=line.get("interval_count") or 1,
                total=line.get("total"),  # with exclusive tax, more than unit x quantity
            )
            for line in details.get("lines", [])
        ]
        shipping = details.get("shipping")
        if shipping and shipping["total"] > 0:
            # One more line of the checkout: its amount is the order's, exclusive tax included.
            # A subscription to goods that ship pays their shipping each period: the line
            # recurs with them (the same rule makes each renewal order carry the shipping,
            # services/orders/renewals.py `recurring_shipping`).
            shipped_cycle = next(
                (
                    line
                    for line in details.get("lines", [])
                    if line.get("interval") and line.get("shippable")
                ),
                None,
            )
            lines.append(
                PaymentLine(
                    pricing_id="shipping",
                    name=shipping["method"]["name"],
                    unit_amount=shipping["amount"],
                    quantity=1,
                    total=shipping["total"],
                    interval=shipped_cycle["interval"] if shipped_cycle else None,
                    interval_count=(shipped_cycle.get("interval_count") or 1)
                    if shipped_cycle
                    else 1,
                )
            )
        if order.customer_id is None:
            raise NotFound("The order has no customer.", code="customer_not_found")
        # The saga's stock step (docs/stock.md): hold the order's stock (409 `out_of_stock`,
        # all lines or none; the same hold again on a retry), give it back when the payment
        # cannot start, and bind it to the attempt that did, whose expiry alone releases it.
        held = await self.clients.catalog.reserve_stock(order.id, order_stock_lines(details))
        tracked = held.status != "none"  # nothing of it tracks stock: no hold to look after
        try:
            payment = await self._start_payment(
                caller, order, lines, shipping, success_url, cancel_url, new_attempt
            )
        except Exception as exc:
            if tracked:
                await self._release_stock(order.id, exc)
            raise
        if tracked:
            await self._bind_stock(order.id, payment.attempt_id)
        return payment

    async def _release_stock(self, order_id: str, failure: Exception) -> None:
        if getattr(failure, "code", None) in _HOLD_BELONGS_TO_A_PAYMENT:
            return  # a payment under way, or paid: the hold is that payment's
        try:
            await self.clients.catalog.release_stock(order_id)
        except ProblemError as exc:  # the deadline sweep releases it later
            log.warning("checkout.stock_release_failed", order_id=order_id, error=str(exc))

    async def _bind_stock(self, order_id: str, attempt_id: str) -> None:
        try:
            await self.clients.catalog.bind_stock_attempt(order_id, attempt_id)
        except ProblemError as exc:  # unbound, the hold waits for the deadline sweep instead
            log.warning("checkout.stock_bind_failed", order_id=order_id, error=str(exc))

    async def _start_payment(
        self,
        caller: Caller,
        order: OrderOut,
        lines: list[PaymentLine],
        shipping: Any,
        success_url: str,
        cancel_url: str,
        new_attempt: bool,
    ) -> PaymentOut:
        details = order.details
        assert order.customer_id is not None
        return await self.clients.payments.start_payment(
            caller.principal,
            StartPaymentIn(
                order_id=order.id,
                order_number=order.number,
                owner=order.owner,
                customer_id=order.customer_id,
                amount=order.total,
                currency=order.currency,
                lines=lines,
                statement_descriptor=details.get("statement_descriptor"),
                success_url=success_url,
                cancel_url=cancel_url,
                new_attempt=new_attempt,
                shipping=ShippingAddress(**shipping["address"]) if shipping else None,
            ),
        )

    # --- orders and subscriptions ----------------------------------------------------------

    async def get_user_orders(
        self, caller: Caller, *, paid: str | None, limit: int, cursor: str | None
    ) -> Page[OrderOut]:
        """The caller's orders, newest first."""
        if caller.user_id is None and caller.anonymous_id is None:
            return Page[OrderOut](items=[])
        return await self.clients.orders.list_orders(
            caller.principal, paid=paid, limit=limit, cursor=cursor
        )

    async def get_order(self, caller: Caller, order_id: str) -> StoreOrderOut:
        """One of the caller's orders, with where its payment stands."""
        caller.require_any()
        order = await self.clients.orders.get_order(caller.principal, order_id)
        attempts = await self.clients.payments.order_payments(caller.principal, order.id)
        return _with_payment(order, attempts)

    async def cancel_order(self, caller: Caller, order_id: str) -> StoreOrderOut:
        """Cancel one of the caller's unpaid orders; 409 while a payment of it is under way
        (a debit cannot be called back), once paid, or once canceled."""
        caller.require_any()
        order = await self.clients.orders.get_order(caller.principal, order_id)
        attempts = await self.clients.payments.order_payments(caller.principal, order.id)
        if any(attempt.status == "processing" for attempt in attempts):
            raise Conflict(
                "A payment of this order is under way; it can be canceled only if it fails.",
                code="payment_processing",
            )
        canceled = await self.clients.orders.cancel_order(caller.principal, order.id)
        return _with_payment(canceled, attempts)

    async def get_subscriptions(self, caller: Caller) -> list[SubscriptionOut]:
        """The caller's subscriptions."""
        if caller.user_id is None and caller.anonymous_id is None:
            return []
        return await self.clients.payments.subscriptions(caller.principal)

    async def cancel_subscription(self, caller: Caller, subscription_id: str) -> SubscriptionOut:
        """Cancel a subscription at the end of its current period."""
        caller.require_any()
        return await self.clients.payments.cancel_subscription(caller.principal, subscription_id)

    async def subscription_portal(
        self, caller: Caller, subscription_id: str, return_url: str
    ) -> PortalOut:
        """A link to the billing portal for one of the caller's subscriptions."""
        caller.require_any()
        return await self.clients.payments.subscription_portal(
            caller.principal, subscription_id, return_url
        )
