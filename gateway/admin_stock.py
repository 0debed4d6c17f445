"""`/api/admin/products/{key}/stock`: an operator reads or sets a product's stock.

Setting `on_hand` starts tracking the product (`tracked: false` stops it); reserved units stay
reserved. The operator (the token's `sub`) goes to catalog and into `catalog.stock.changed.v1`.
Product pages show the change within the gateway's product cache TTL
(`GATEWAY_PRODUCT_CACHE_TTL_S`); checkout always reserves against the current numbers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from gateway.deps import CurrentAdmin, Deps
from libs.contracts.catalog import StockLevelOut
from libs.contracts.common import KEY_PATTERN
from libs.contracts.envelope import Contract, example

# Mounted under /api/admin for admins only (admin_router.ADMIN_ROUTES).
router = APIRouter()

Key = Annotated[str, Path(min_length=1, max_length=128, pattern=KEY_PATTERN)]


class AdminStockIn(Contract):
    """The units on hand, not yet sold; `tracked: false` stops tracking the product."""

    on_hand: int = Field(ge=0, le=1_000_000_000)
    tracked: bool = True

    model_config = example({"on_hand": 10})


@router.get("/products/{key}/stock", summary="A product's stock")
async def get_stock(key: Key, deps: Deps, admin: CurrentAdmin) -> StockLevelOut:
    """On hand, reserved and available units of a product."""
    return await deps.admin.get_stock(key)


@router.put("/products/{key}/stock", summary="Set a product's stock")
async def set_stock(key: Key, body: AdminStockIn, deps: Deps, admin: CurrentAdmin) -> StockLevelOut:
    """Set the units on hand (404 `product_not_found` for an unknown key)."""
    return await deps.admin.set_stock(
        actor=admin.actor, key=key, on_hand=body.on_hand, tracked=body.tracked
    )
