"""What the catalog consumes: HANDLERS, bound by `Runtime.subscribe(service, HANDLERS)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import CartCheckedOut
from libs.runtime.runtime import EventHandler

if TYPE_CHECKING:
    from services.catalog.service import CatalogService


async def on_cart_checked_out(
    service: CatalogService, session: AsyncSession, payload: CartCheckedOut
) -> None:
    """Prices in a checked-out cart are sold: from now on they are replaced, never edited."""
    await service.mark_prices_sold(session, pricing_ids=(line.pricing_id for line in payload.lines))


HANDLERS: dict[type[Event], EventHandler] = {CartCheckedOut: on_cart_checked_out}
