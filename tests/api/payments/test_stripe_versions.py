"""Stripe API versions and endpoint secrets: an event rendered at another API version than the
pinned one is refused (so Stripe retries it) and never answered 200-and-dropped, with one
operator log line per version and a counter; and several endpoint secrets are accepted side by
side. The payments app runs on the fake Stripe, events signed as Stripe signs them."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.payments.metrics import payments_metrics
from services.payments.stripe_provider import STRIPE_API_VERSION
from tests.api.payments.test_stripe import StripeWorld, headers, stripe_world
from tests.fakes.stripe_fixtures import sign_webhook
from tests.unit.payments.builders import RENEWED, published

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

OLDER = "2024-06-20"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


async def a_renewal_event(world: StripeWorld) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paid subscription, and the `invoice.paid` of its renewal, held back from the store."""
    paid = await world.pay(recurring=True)
    await world.fake.state.complete_checkout_session(paid["session"]["id"])
    stripe_id = world.fake.object(paid["session"]["id"])["subscription"]
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)
    renewal = await world.fake.state.renew_subscription(stripe_id)
    world.fake.set_webhook(url)
    [event_id] = [e for e in renewal.event_ids if world.fake.object(e)["type"] == "invoice.paid"]
    return paid, copy.deepcopy(world.fake.object(event_id))


def at_an_older_version(event: dict[str, Any]) -> dict[str, Any]:
    """The same renewal as an endpoint on an older API version gets it: the subscription at the
    invoice's top level, no `parent`."""
    older = copy.deepcopy(event)
    invoice = older["data"]["object"]
    parent = invoice.pop("parent", None) or {}
    details = parent.get("subscription_details") or {}
    invoice["subscription"] = details.get("subscription")
    older["api_version"] = OLDER
    return older


async def renewals(world: StripeWorld, paid: dict[str, Any]) -> int:
    [subscription] = (
        await world.http.get("/subscriptions", headers=headers(paid["shopper"]))
    ).json()
    return int(subscription["renewals"])


def refused_count(version: str) -> float:
    return payments_metrics().versions_refused.labels(api_version=version)._value.get()


async def test_an_older_shape_renewal_is_refused_not_acknowledged_and_dropped(
    world: StripeWorld,
) -> None:
    paid, event = await a_renewal_event(world)
    assert event["api_version"] == STRIPE_API_VERSION
    before = refused_count(OLDER)
    with capture_logs() as logs:
        first = await world.post_event(at_an_older_version(event))
        again = await world.post_event(at_an_older_version(event))
    for response in (first, again):
        # Not 2xx: Stripe keeps the event and retries it once the endpoint is fixed.
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "unsupported_api_version"
        assert STRIPE_API_VERSION in response.json()["detail"]
    assert await published(world.deps, RENEWED) == []
    assert await renewals(world, paid) == 0
    assert refused_count(OLDER) == before + 2
    told = [log for log in logs if log["event"] == "stripe.webhook_version_refused"]
    assert len(told) == 1 and told[0]["api_version"] == OLDER
    assert STRIPE_API_VERSION in told[0]["fix"]

    # Once the endpoint is on the pinned version, Stripe's retry of the same event renews.
    retried = await world.post_event(event)
    assert retried.status_code == 200, retried.text
    assert len(await published(world.deps, RENEWED)) == 1
    assert await renewals(world, paid) == 1


async def test_an_event_that_names_no_version_is_refused(world: StripeWorld) -> None:
    paid, event = await a_renewal_event(world)
    event["api_version"] = None
    response = await world.post_event(event)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "unsupported_api_version"
    assert await renewals(world, paid) == 0


async def test_any_configured_endpoint_secret_is_accepted_and_no_other(tmp_path: Path) -> None:
    async with stripe_world(tmp_path, other_webhook_secrets=["whsec_next_endpoint"]) as world:
        paid, event = await a_renewal_event(world)
        payload = json.dumps(event).encode()

        async def post(secret: str) -> int:
            signature = sign_webhook(payload, secret)
            response = await world.http.post(
                "/webhooks/stripe",
                content=payload,
                headers={"stripe-signature": signature, "content-type": "application/json"},
            )
            return response.status_code

        assert await post("whsec_not_ours") == 400
        assert await renewals(world, paid) == 0
        assert await post("whsec_next_endpoint") == 200
        assert await renewals(world, paid) == 1
        # The fake's own secret, listed second, is accepted too (a redelivery: nothing new).
        assert await post(world.fake.webhook_secret) == 200
        assert await renewals(world, paid) == 1
