"""Request dependencies every service shares: the caller's principal and the service token.

Services are reached only through the gateway (or each other); the gateway sends who the
caller is in the `x-store-principal` header and every internal write carries the shared
`x-service-token`.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import ValidationError

from libs.contracts.common import PRINCIPAL_HEADER, Principal
from libs.runtime.http import SERVICE_TOKEN_HEADER
from libs.runtime.problems import Unauthorized


def principal_or_none(
    header: Annotated[str | None, Header(alias=PRINCIPAL_HEADER, include_in_schema=False)] = None,
) -> Principal | None:
    """The caller as the gateway established it; None without the header."""
    if not header:
        return None
    try:
        return Principal.model_validate_json(header)
    except ValidationError:
        raise Unauthorized(
            f"The {PRINCIPAL_HEADER} header is not a principal.", code="invalid_principal"
        ) from None


def require_principal(
    principal: Annotated[Principal | None, Depends(principal_or_none)],
) -> Principal:
    """The caller, who must be someone: a user or an anonymous shopper."""
    if principal is None or principal.owner is None:
        raise Unauthorized(
            f"The {PRINCIPAL_HEADER} header names nobody.", code="principal_required"
        )
    return principal


def require_service_token(
    request: Request,
    token: Annotated[
        str | None, Header(alias=SERVICE_TOKEN_HEADER, include_in_schema=False)
    ] = None,
) -> None:
    """Internal writes come from the gateway or another service, with the shared token."""
    expected = request.app.state.runtime.settings.service_token
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized(
            f"The {SERVICE_TOKEN_HEADER} header is missing or wrong.", code="invalid_service_token"
        )
