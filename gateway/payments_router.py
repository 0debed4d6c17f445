"""`/api/payments/*`: billing information, and the payments service's public pages and webhooks."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from gateway.deps import CurrentCaller, Deps
from gateway.idempotency import Idempotent
from gateway.security import checked_id
from libs.contracts.payments import CreateBillingIn, CustomerOut
from libs.runtime.http import RemoteProblem
from libs.runtime.problems import problem_response

router = APIRouter(prefix="/api/payments", tags=["payments"])

# Headers a provider's webhook or a browser's form post needs to arrive intact.
_FORWARDED = ("content-type", "stripe-signature", "accept", "user-agent")
_RETURNED = ("content-type", "location", "cache-control")


@router.post(
    "/billing",
    status_code=status.HTTP_201_CREATED,
    summary="Create billing information",
    dependencies=[Idempotent],
)
async def create_billing(body: CreateBillingIn, deps: Deps, caller: CurrentCaller) -> CustomerOut:
    """Billing details become a customer of the user, the anonymous shopper (who gets the
    cookie) or an organization the user belongs to."""
    return await deps.interactor.create_billing(caller, body)


@router.post("/webhooks/stripe", include_in_schema=False)
async def stripe_webhook(request: Request, deps: Deps) -> Response:
    """Stripe's webhook, passed on with its signature header (the payments service verifies it)."""
    return await _forward(request, deps, "/webhooks/stripe")


@router.get("/dev-checkout/{attempt_id}", include_in_schema=False)
async def dev_checkout_page(attempt_id: str, request: Request, deps: Deps) -> Response:
    """The dev provider's hosted checkout page (404 unless the dev provider is enabled)."""
    return await _forward(request, deps, f"/dev-checkout/{checked_id(attempt_id)}")


@router.post("/dev-checkout/{attempt_id}/pay", include_in_schema=False)
async def dev_checkout_pay(attempt_id: str, request: Request, deps: Deps) -> Response:
    """The dev checkout page's Pay button."""
    return await _forward(request, deps, f"/dev-checkout/{checked_id(attempt_id)}/pay")


@router.post("/dev-checkout/{attempt_id}/decline", include_in_schema=False)
async def dev_checkout_decline(attempt_id: str, request: Request, deps: Deps) -> Response:
    """The dev checkout page's Decline button."""
    return await _forward(request, deps, f"/dev-checkout/{checked_id(attempt_id)}/decline")


@router.post("/dev-checkout/{attempt_id}/pay-later", include_in_schema=False)
async def dev_checkout_pay_later(attempt_id: str, request: Request, deps: Deps) -> Response:
    """The dev checkout page's Pay later button (a delayed method, like SEPA Debit)."""
    return await _forward(request, deps, f"/dev-checkout/{checked_id(attempt_id)}/pay-later")


@router.post("/dev-checkout/{attempt_id}/settle", include_in_schema=False)
async def dev_checkout_settle(attempt_id: str, request: Request, deps: Deps) -> Response:
    """Dev action: a processing payment settles."""
    return await _forward(request, deps, f"/dev-checkout/{checked_id(attempt_id)}/settle")


@router.post("/dev-checkout/{attempt_id}/refuse", include_in_schema=False)
async def dev_checkout_refuse(attempt_id: str, request: Request, deps: Deps) -> Response:
    """Dev action: a processing payment's debit is refused."""
    return await _forward(request, deps, f"/dev-checkout/{checked_id(attempt_id)}/refuse")


@router.post("/dev-checkout/subscriptions/{subscription_id}/renew", include_in_schema=False)
async def dev_renew_subscription(subscription_id: str, request: Request, deps: Deps) -> Response:
    """Dev action: a subscription's period ends and is renewed."""
    path = f"/dev-checkout/subscriptions/{checked_id(subscription_id)}/renew"
    return await _forward(request, deps, path)


@router.get("/dev-checkout/subscriptions/{subscription_id}/portal", include_in_schema=False)
async def dev_portal_page(subscription_id: str, request: Request, deps: Deps) -> Response:
    """The dev provider's billing portal page."""
    path = f"/dev-checkout/subscriptions/{checked_id(subscription_id)}/portal"
    done = request.query_params.get("done")
    if done in ("card", "cancel"):
        path += f"?done={done}"
    return await _forward(request, deps, path)


@router.post("/dev-checkout/subscriptions/{subscription_id}/portal/card", include_in_schema=False)
async def dev_portal_card(subscription_id: str, request: Request, deps: Deps) -> Response:
    """The dev billing portal's Update card button."""
    path = f"/dev-checkout/subscriptions/{checked_id(subscription_id)}/portal/card"
    return await _forward(request, deps, path)


@router.post("/dev-checkout/subscriptions/{subscription_id}/portal/cancel", include_in_schema=False)
async def dev_portal_cancel(subscription_id: str, request: Request, deps: Deps) -> Response:
    """The dev billing portal's Cancel button."""
    path = f"/dev-checkout/subscriptions/{checked_id(subscription_id)}/portal/cancel"
    return await _forward(request, deps, path)


async def _forward(request: Request, deps: Deps, path: str) -> Response:
    """Pass a public request on to a fixed payments path; only a few headers go along."""
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
    try:
        upstream = await deps.interactor.clients.payments.forward(
            request.method, path, body=body, headers=headers
        )
    except RemoteProblem as exc:
        return problem_response(exc.to_problem(instance=request.url.path))
    return Response(
        content=upstream.content,
        status_code=upstream.status_code,
        headers={k: v for k, v in upstream.headers.items() if k in _RETURNED},
    )
