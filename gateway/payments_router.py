"""`/api/payments/*`: billing information, and the payments service's public pages and webhooks."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response, status

from gateway.deps import CurrentCaller, Deps
from gateway.idempotency import Idempotent
from libs.contracts.payments import CreateBillingIn, CustomerOut
from libs.runtime.http import RemoteProblem
from libs.runtime.problems import NotFound, problem_response

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


@router.api_route(
    "/{rest:path}", methods=["GET", "POST"], include_in_schema=False, name="payments_public"
)
async def forward_to_payments(
    rest: Annotated[str, Path(max_length=500)], request: Request, deps: Deps
) -> Response:
    """Webhooks (`webhooks/stripe`) and the dev provider's hosted checkout (`dev-checkout/...`)."""
    segments = rest.split("/")
    if segments[0] not in ("webhooks", "dev-checkout") or any(
        seg in ("", ".", "..") for seg in segments
    ):
        raise NotFound("No such payments page.")
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
    # Re-encode each segment: a decoded `?` or `#` in the path must stay part of the path.
    path = "/" + "/".join(quote(seg, safe="") for seg in segments)
    if request.url.query:
        path += f"?{request.url.query}"
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
