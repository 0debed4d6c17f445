"""The order a message is about, read from the orders service as its owner would see it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from libs.contracts.common import ID_PATTERN, Owner, Principal
from libs.contracts.orders import OrderOut


class OrdersSource(Protocol):
    async def get_order(self, *, owner: Owner, order_id: str) -> OrderOut:
        """The order view (its details hold the billing e-mail, locale, lines and totals)."""


def principal_of(owner: Owner) -> Principal:
    """A principal the orders service lets read `owner`'s orders."""
    if owner.kind == "user":
        return Principal(user_id=owner.id)
    if owner.kind == "anonymous":
        return Principal(anonymous_id=owner.id)
    return Principal(orgs=[owner.id])


class OrdersServiceSource:
    """`GET /orders/{id}` on the orders service, with the service credential."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client  # resolved per call: the directory may register apps late

    async def get_order(self, *, owner: Owner, order_id: str) -> OrderOut:
        if not re.match(ID_PATTERN, order_id):
            raise ValueError(f"not an order id: {order_id!r}")
        order: OrderOut = await self._client().call(
            "GET", f"/orders/{order_id}", OrderOut, principal=principal_of(owner)
        )
        return order
