"""Wiring of the cart service: settings in, ready-made dependencies out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime.runtime import Runtime, Shared
from services.cart.domain import Limits
from services.cart.handlers import HANDLERS
from services.cart.pricing import CatalogPricing, PriceCache, Prices, PricingSource
from services.cart.service import CartService
from services.cart.settings import CartSettings
from services.cart.store import RedisCartRepository, SqlCartRepository
from services.cart.tables import metadata


@dataclass(frozen=True)
class CartDeps:
    settings: CartSettings
    runtime: Runtime
    service: CartService


def build_deps(
    settings: CartSettings, shared: Shared, *, pricing: PricingSource | None = None
) -> CartDeps:
    """The cart's runtime and service; `pricing` replaces the catalog client (tests)."""
    runtime = Runtime.for_service(
        name="cart",
        settings=settings,
        metadata=metadata,
        migrations_dir=Path(__file__).parent / "migrations",
        shared=shared,
        uses_redis=True,
    )
    cache = (
        PriceCache(
            runtime.redis,
            prefix=settings.redis_prefix,
            ttl_seconds=settings.price_cache_ttl_seconds,
        )
        if settings.price_cache_ttl_seconds > 0
        else None
    )
    service = CartService(
        runtime=runtime,
        anonymous=RedisCartRepository(
            runtime.redis,
            prefix=settings.redis_prefix,
            ttl_seconds=settings.anonymous_ttl_seconds,
        ),
        users=SqlCartRepository(runtime),
        prices=Prices(pricing or CatalogPricing(lambda: runtime.client("catalog")), cache),
        limits=Limits(max_quantity=settings.max_quantity_per_line, max_lines=settings.max_lines),
    )
    runtime.subscribe(service, HANDLERS)
    return CartDeps(settings=settings, runtime=runtime, service=service)
