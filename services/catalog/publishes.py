"""What the catalog publishes: its records turned into contract events."""

from __future__ import annotations

from collections.abc import Mapping

from libs.contracts.events import PricingChanged, ProductChanged
from services.catalog.domain import Pricing, Product, Texts


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
