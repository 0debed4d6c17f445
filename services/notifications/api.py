"""The notifications service's HTTP API (internal, with the service credential): the log of
sent messages, for an operator."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from libs.contracts.common import ID_PATTERN, Contract
from services.notifications.service import NotificationsService


class SentMessageOut(Contract):
    event_id: str
    kind: str
    message_id: str
    order_id: str
    recipient: str
    locale: str
    subject: str
    sent_at: datetime


class SentMessagesOut(Contract):
    items: list[SentMessageOut]
    next_before: datetime | None = Field(
        None, description="Pass as `before` for the next (older) page; null on the last."
    )


def get_service(request: Request) -> NotificationsService:
    service: NotificationsService = request.app.state.notifications.service
    return service


Service = Annotated[NotificationsService, Depends(get_service)]

router = APIRouter(tags=["notifications"])


@router.get("/messages", response_model=SentMessagesOut)
async def list_sent_messages(
    service: Service,
    order_id: Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)] = None,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SentMessagesOut:
    """The messages sent, newest first; `order_id` keeps one order's."""
    found = await service.list_sent_messages(limit=limit, order_id=order_id, before=before)
    return SentMessagesOut(
        items=[SentMessageOut.model_validate(message.__dict__) for message in found],
        next_before=found[-1].sent_at if len(found) == limit else None,
    )
