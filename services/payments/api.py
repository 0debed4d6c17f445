"""HTTP routes of the payments service.

Internal routes (the gateway calls them with the caller's principal header): customers,
payments, subscriptions. Public routes, reached through the gateway's `/api/payments/*`
proxy: the Stripe webhook and the dev provider's hosted checkout.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from libs.contracts.common import Principal
from libs.contracts.payments import (
    CreateBillingIn,
    CustomerOut,
    DisputeOut,
    OperatorRefundIn,
    PaymentAttemptOut,
    PaymentCheckIn,
    PaymentOut,
    PortalIn,
    PortalOut,
    ReconcileOut,
    RefundOut,
    RefundStatus,
    StartPaymentIn,
    SubscriptionOut,
    WebhookAck,
)
from libs.runtime.auth import principal_or_none as get_principal
from libs.runtime.auth import require_service_token
from libs.runtime.problems import InvalidInput
from services.payments.bootstrap import PaymentsDeps
from services.payments.customers import CustomerService
from services.payments.dev_provider import DEV_PORTAL
from services.payments.payments import PaymentService
from services.payments.subscriptions import SubscriptionService


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker
# thread, a hop per request that showed in the profile of the payment path.
def get_deps(request: Request) -> PaymentsDeps:
    deps: PaymentsDeps = request.app.state.payments
    return deps


async def get_customers(request: Request) -> CustomerService:
    return get_deps(request).customers


async def get_payments(request: Request) -> PaymentService:
    return get_deps(request).payments


async def get_subscriptions(request: Request) -> SubscriptionService:
    return get_deps(request).subscriptions


Caller = Annotated[Principal | None, Depends(get_principal)]
Customers = Annotated[CustomerService, Depends(get_customers)]
Payments = Annotated[PaymentService, Depends(get_payments)]
Subscriptions = Annotated[SubscriptionService, Depends(get_subscriptions)]
Id = Annotated[str, Path(min_length=1, max_length=255)]

# --- customers -------------------------------------------------------------------------------

customers_router = APIRouter(tags=["customers"])


@customers_router.post("/customers", status_code=status.HTTP_201_CREATED)
async def create_billing(body: CreateBillingIn, caller: Caller, service: Customers) -> CustomerOut:
    """Create billing information: a customer of the caller, or of one of its organizations."""
    return await service.create_billing(principal=caller, data=body)


@customers_router.get("/customers")
async def get_customers_for_user(caller: Caller, service: Customers) -> list[CustomerOut]:
    """The caller's own customers, oldest first."""
    return await service.get_customers_for_user(principal=caller)


@customers_router.get("/customers/default")
async def get_default_customer(caller: Caller, service: Customers) -> CustomerOut:
    """The caller's default customer (404 `no_default_customer` when there is none)."""
    return await service.get_default_customer(principal=caller)


@customers_router.get("/customers/{customer_id}")
async def get_customer(customer_id: Id, caller: Caller, service: Customers) -> CustomerOut:
    """One of the caller's customers."""
    return await service.get_customer(principal=caller, customer_id=customer_id)


@customers_router.delete("/customers/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_customer(customer_id: Id, caller: Caller, service: Customers) -> Response:
    """Delete a customer; a deleted default is replaced by the oldest remaining customer."""
    await service.delete_customer(principal=caller, customer_id=customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@customers_router.post("/customers/{customer_id}/default")
async def set_default_customer(customer_id: Id, caller: Caller, service: Customers) -> CustomerOut:
    """Make a customer the default of its owner."""
    return await service.set_default_customer(principal=caller, customer_id=customer_id)


@customers_router.get("/organizations/{organization_id}/customers")
async def get_customers_for_organization(
    organization_id: Id, caller: Caller, service: Customers
) -> list[CustomerOut]:
    """An organization's customers; members only (403 `not_a_member`)."""
    return await service.get_customers_for_organization(
        principal=caller, organization_id=organization_id
    )


# --- payments (internal) ---------------------------------------------------------------------

payments_router = APIRouter(tags=["payments"], dependencies=[Depends(require_service_token)])


@payments_router.post(
    "/payments",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": PaymentOut, "description": "The order's open attempt, reused."}},
)
async def start_payment(body: StartPaymentIn, response: Response, service: Payments) -> PaymentOut:
    """A new payment attempt with a provider checkout, or the order's open one when retried."""
    payment, created = await service.start_payment(data=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return payment


@payments_router.post("/payments/check", status_code=status.HTTP_204_NO_CONTENT)
async def check_payment(body: PaymentCheckIn, service: Payments) -> Response:
    """Whether the provider can charge these lines: 204, or the 422 a payment would get."""
    await service.check_payment(data=body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@payments_router.get("/payments/{attempt_id}")
async def get_payment(attempt_id: Id, service: Payments) -> PaymentAttemptOut:
    """One payment attempt."""
    return await service.get_payment(attempt_id=attempt_id)


@payments_router.get("/orders/{order_id}/payments")
async def get_order_payments(order_id: Id, service: Payments) -> list[PaymentAttemptOut]:
    """Every attempt to pay an order, oldest first."""
    return await service.get_order_payments(order_id=order_id)


@payments_router.get("/refunds")
async def list_refunds(
    service: Payments,
    status_: Annotated[
        RefundStatus | None, Query(alias="status", description="Only these.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RefundOut]:
    """Refunds of money that must not stay, newest first."""
    return await service.list_refunds(status=status_, limit=limit)


@payments_router.post(
    "/admin/orders/{order_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": RefundOut, "description": "The refund of this key, as before."}},
)
async def refund_order(
    order_id: Id, body: OperatorRefundIn, response: Response, service: Payments
) -> RefundOut:
    """An operator's refund of a paid order: an amount, lines, or all that is left (409
    `refund_exceeds_paid` past what was paid, `order_not_paid`); once per idempotency key."""
    refund, created = await service.operator_refunds.refund_order(order_id=order_id, data=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return refund


@payments_router.get("/disputes")
async def list_disputes(
    service: Payments,
    open_only: Annotated[bool, Query(alias="open", description="Only those still open.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DisputeOut]:
    """Disputed payments, newest first."""
    return await service.disputes.list(open_only=open_only, limit=limit)


@payments_router.post("/reconcile")
async def reconcile(request: Request) -> ReconcileOut:
    """Run reconciliation now: settle what lost webhooks left, retry pending refunds."""
    return await get_deps(request).reconciler.reconcile()


# --- webhooks (public through the gateway) ---------------------------------------------------

webhooks_router = APIRouter(tags=["webhooks"])


@webhooks_router.post("/webhooks/stripe")
async def stripe_webhook(request: Request, service: Payments) -> WebhookAck:
    """Stripe's webhook: signature and age verified, applied once per event id."""
    payload = await request.body()
    return await service.receive_webhook(
        provider_name="stripe", payload=payload, headers=request.headers
    )


# --- the dev provider's hosted checkout (public through the gateway) -------------------------

dev_router = APIRouter(tags=["dev checkout"])


@dev_router.get("/dev-checkout/{attempt_id}", response_class=HTMLResponse)
async def dev_checkout_page(attempt_id: Id, service: Payments) -> HTMLResponse:
    """The dev provider's checkout page: the order, its lines and total, Pay and Decline."""
    page = await service.dev_checkout_page(attempt_id=attempt_id)
    return HTMLResponse(page, headers={"cache-control": "no-store"})


async def _press(
    service: PaymentService, attempt_id: str, action: Literal["pay", "decline", "pay_later"]
) -> RedirectResponse:
    location = await service.dev_checkout_action(attempt_id=attempt_id, action=action)
    return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)


@dev_router.post("/dev-checkout/{attempt_id}/pay", response_class=RedirectResponse)
async def dev_checkout_pay(attempt_id: Id, service: Payments) -> RedirectResponse:
    """Pay: handled like the provider's verified webhook, then 303 to the success URL."""
    return await _press(service, attempt_id, "pay")


@dev_router.post("/dev-checkout/{attempt_id}/decline", response_class=RedirectResponse)
async def dev_checkout_decline(attempt_id: Id, service: Payments) -> RedirectResponse:
    """Decline: handled like the provider's verified webhook, then 303 to the cancel URL."""
    return await _press(service, attempt_id, "decline")


@dev_router.post("/dev-checkout/{attempt_id}/pay-later", response_class=RedirectResponse)
async def dev_checkout_pay_later(attempt_id: Id, service: Payments) -> RedirectResponse:
    """Pay by a delayed method: the attempt is processing; 303 to the success URL."""
    return await _press(service, attempt_id, "pay_later")


@dev_router.post("/dev-checkout/{attempt_id}/settle")
async def dev_checkout_settle(attempt_id: Id, service: Payments) -> PaymentAttemptOut:
    """Dev/test action: a processing payment's money arrives, like its webhook."""
    return await service.dev_settle(attempt_id=attempt_id, succeeded=True)


@dev_router.post("/dev-checkout/{attempt_id}/refuse")
async def dev_checkout_refuse(attempt_id: Id, service: Payments) -> PaymentAttemptOut:
    """Dev/test action: a processing payment's debit is refused, like its webhook."""
    return await service.dev_settle(attempt_id=attempt_id, succeeded=False)


@dev_router.post("/dev-checkout/subscriptions/{subscription_id}/renew")
async def dev_renew_subscription(subscription_id: Id, service: Payments) -> SubscriptionOut:
    """Dev/test action: the period ends and is renewed, like a renewal webhook."""
    return await service.dev_renew(subscription_id=subscription_id)


@dev_router.get("/dev-checkout/subscriptions/{subscription_id}/portal", response_class=HTMLResponse)
async def dev_portal_page(
    subscription_id: Id,
    service: Subscriptions,
    done: Annotated[Literal["card", "cancel"] | None, Query()] = None,
) -> HTMLResponse:
    """The dev provider's billing portal: the subscription, Update card and Cancel."""
    page = await service.dev_portal_page(subscription_id=subscription_id, done=done)
    return HTMLResponse(page, headers={"cache-control": "no-store"})


@dev_router.post("/dev-checkout/subscriptions/{subscription_id}/portal/card")
async def dev_portal_card(subscription_id: Id, service: Subscriptions) -> RedirectResponse:
    """Update card: 303 back to the portal page."""
    await service.dev_portal_card(subscription_id=subscription_id)
    return _back_to_portal(subscription_id, "card")


@dev_router.post("/dev-checkout/subscriptions/{subscription_id}/portal/cancel")
async def dev_portal_cancel(subscription_id: Id, service: Subscriptions) -> RedirectResponse:
    """Cancel at the end of the period: 303 back to the portal page."""
    await service.dev_portal_cancel(subscription_id=subscription_id)
    return _back_to_portal(subscription_id, "cancel")


def _back_to_portal(subscription_id: str, done: str) -> RedirectResponse:
    location = f"{DEV_PORTAL.format(id=subscription_id)}?done={done}"
    return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)


# --- subscriptions ---------------------------------------------------------------------------

subscriptions_router = APIRouter(tags=["subscriptions"])


@subscriptions_router.get("/subscriptions")
async def list_subscriptions(caller: Caller, service: Subscriptions) -> list[SubscriptionOut]:
    """The caller's subscriptions, newest first."""
    return await service.list_subscriptions(principal=caller)


@subscriptions_router.get("/subscriptions/{subscription_id}")
async def get_subscription(
    subscription_id: Id, caller: Caller, service: Subscriptions
) -> SubscriptionOut:
    """One of the caller's subscriptions."""
    return await service.get_subscription(principal=caller, subscription_id=subscription_id)


@subscriptions_router.post("/subscriptions/{subscription_id}/cancel")
async def cancel_subscription(
    subscription_id: Id, caller: Caller, service: Subscriptions
) -> SubscriptionOut:
    """Cancel at the end of the current period."""
    return await service.cancel_subscription(principal=caller, subscription_id=subscription_id)


@subscriptions_router.post("/subscriptions/{subscription_id}/portal")
async def subscription_portal(
    subscription_id: Id, body: PortalIn, caller: Caller, service: Subscriptions
) -> PortalOut:
    """A link to the provider's billing portal for one of the caller's subscriptions."""
    if body.return_url is None:  # the gateway always says where to come back to
        raise InvalidInput("return_url is required here.", code="invalid_return_url")
    return await service.subscription_portal(
        principal=caller, subscription_id=subscription_id, return_url=body.return_url
    )


routers = [
    customers_router,
    payments_router,
    webhooks_router,
    dev_router,
    subscriptions_router,
]
