"""What payments consumes: HANDLERS, bound by `Runtime.subscribe(service, HANDLERS)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import AnonymousMerged
from libs.runtime.runtime import EventHandler

if TYPE_CHECKING:
    from services.payments.customers import CustomerService


async def on_anonymous_merged(
    service: CustomerService, session: AsyncSession, payload: AnonymousMerged
) -> None:
    """An anonymous shopper logged in: their customers become the user's."""
    await service.anonymous_to_user(session, payload)


HANDLERS: dict[type[Event], EventHandler] = {AnonymousMerged: on_anonymous_merged}
