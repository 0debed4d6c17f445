"""Persistence of the notifications service: the sent-message log and the order owners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner
from services.notifications.tables import order_owners, sent_messages


@dataclass(frozen=True)
class SentMessage:
    event_id: str
    kind: str
    message_id: str
    order_id: str
    recipient: str
    locale: str
    subject: str
    sent_at: datetime


def _insert(session: AsyncSession, table: object) -> postgresql.Insert | sqlite.Insert:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)  # type: ignore[arg-type]


class SqlSentMessages:
    """The log of messages sent, one row per event and kind."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def was_sent(self, *, event_id: str, kind: str) -> bool:
        found = await self.session.execute(
            select(sent_messages.c.message_id).where(
                sent_messages.c.event_id == event_id, sent_messages.c.kind == kind
            )
        )
        return found.first() is not None

    async def add(self, message: SentMessage) -> None:
        await self.session.execute(sent_messages.insert().values(**message.__dict__))

    async def page(
        self, *, limit: int, order_id: str | None = None, before: datetime | None = None
    ) -> list[SentMessage]:
        """The newest messages first, optionally of one order and sent before `before`."""
        query = select(sent_messages).order_by(
            sent_messages.c.sent_at.desc(), sent_messages.c.event_id.desc()
        )
        if order_id is not None:
            query = query.where(sent_messages.c.order_id == order_id)
        if before is not None:
            query = query.where(sent_messages.c.sent_at < before)
        rows = await self.session.execute(query.limit(limit))
        return [SentMessage(**row._mapping) for row in rows]

    async def count(self) -> int:
        return int(
            (
                await self.session.execute(select(func.count()).select_from(sent_messages))
            ).scalar_one()
        )


class SqlOrderOwners:
    """Who owns each order, as the orders' events said."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def remember(self, *, order_id: str, owner: Owner, at: datetime) -> None:
        statement = _insert(self.session, order_owners).values(
            order_id=order_id, owner_kind=owner.kind, owner_id=owner.id, updated_at=at
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[order_owners.c.order_id],
                set_={"owner_kind": owner.kind, "owner_id": owner.id, "updated_at": at},
            )
        )

    async def owner_of(self, order_id: str) -> Owner | None:
        row = (
            await self.session.execute(
                select(order_owners.c.owner_kind, order_owners.c.owner_id).where(
                    order_owners.c.order_id == order_id
                )
            )
        ).first()
        return None if row is None else Owner(kind=row.owner_kind, id=row.owner_id)

    async def reown(self, *, anonymous_id: str, user_id: str, at: datetime) -> None:
        await self.session.execute(
            update(order_owners)
            .where(
                order_owners.c.owner_kind == "anonymous", order_owners.c.owner_id == anonymous_id
            )
            .values(owner_kind="user", owner_id=user_id, updated_at=at)
        )
