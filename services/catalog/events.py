"""What the catalog publishes (domain -> contract) and what it subscribes to."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import CartCheckedOut, PricingChanged, ProductChanged
from libs.runtime.runtime import EventHandler
from services.catalog.domain import Pricing, Product, Texts
from services.catalog.store import SqlCatalogRepository


def product_changed(
    product: Product, translations: Mapping[str, Texts], default_locale: str
) -> ProductChanged:
    return ProductChanged(
        product_key=product.key,
        active=product.active,
        shippable=product.shippable,
        tax_code=product.tax_code,
        names={locale: texts.name for locale, texts in sorted(translations.items())},
        default_locale=default_locale,
        sellable=product.sellable,
    )


def pricing_changed(pricing: Pricing, product_key: str) -> PricingChanged:
    return PricingChanged(
        pricing_id=pricing.id,
        product_key=product_key,
        unit_amount=pricing.terms.unit_amount,
        currency=pricing.terms.currency,
        interval=pricing.terms.interval,
        interval_count=pricing.terms.interval_count,
        active=pricing.active,
        replaced_by=pricing.replaced_by,
    )


async def on_cart_checked_out(session: AsyncSession, payload: CartCheckedOut) -> None:
    """Prices in a checked-out cart are sold: from now on they are replaced, never edited."""
    # Marking is idempotent and order-free: a late or repeated event sets the same flag.
    await SqlCatalogRepository(session).mark_used(line.pricing_id for line in payload.lines)


SUBSCRIPTIONS: dict[type[Event], EventHandler] = {CartCheckedOut: on_cart_checked_out}
