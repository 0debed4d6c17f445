"""A catalog price change travels through real RabbitMQ to the cart and changes its summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from libs.contracts.envelope import Envelope
from libs.contracts.events import PricingChanged
from libs.runtime.rabbit import RabbitBus
from tests.unit.cart.builders import anonymous, cart_settings, running_cart
from tests.unit.cart.fakes import FakeCatalog

pytestmark = pytest.mark.integration


async def test_pricing_changed_through_rabbitmq_refreshes_the_summary(
    tmp_path: Path, redis_url: str, bus_names
) -> None:
    catalog = FakeCatalog()
    settings = cart_settings(
        tmp_path,
        redis_url=redis_url,
        broker_url=bus_names.url,
        runtime={"exchange": bus_names.exchange, "queue_prefix": bus_names.queue_prefix},
    )
    publisher = RabbitBus(
        bus_names.url, exchange=bus_names.exchange, queue_prefix=bus_names.queue_prefix
    )
    async with running_cart(settings, catalog) as deps:
        await publisher.start()
        try:
            service, who, mug = deps.service, anonymous(), catalog.add(1000)
            await service.add_to_cart(
                principal=who, pricing_id=mug.pricing_id, quantity=2, locale=None
            )
            mug.unit_amount = 1250  # catalog changed the price ...
            summary = await service.get_cart_summarized(principal=who, locale=None)
            assert summary.total == 2000  # ... the cart still shows its cached copy

            event = PricingChanged(
                pricing_id=mug.pricing_id,
                product_key=mug.product_key,
                unit_amount=1250,
                currency="EUR",
            )
            await publisher.publish(Envelope.wrap(event, producer="catalog"))

            async def refreshed() -> int:
                while True:
                    summary = await service.get_cart_summarized(principal=who, locale=None)
                    if summary.total != 2000:
                        return summary.total
                    await asyncio.sleep(0.05)

            assert await asyncio.wait_for(refreshed(), 15) == 2500
            assert summary.lines[0].unit_amount == 1000
        finally:
            await publisher.stop()
