"""Signed webhooks that are not what they say (findings 4 and 5, and a non-UTF-8 body): a paid
event without its amount or currency pays nothing, a malformed payload is 400 and changes
nothing, and a signature dated in the future is refused. The payments app runs on the fake
Stripe, behind the gateway's forwarding, with webhooks signed as Stripe signs them."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.payments.test_stripe import StripeWorld, stripe_world
from tests.fakes.stripe_fixtures import sign_webhook
from tests.unit.payments.builders import SUCCEEDED, published

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


def completed_event(session: dict[str, Any]) -> dict[str, Any]:
    """The `checkout.session.completed` Stripe would send for this session once paid."""
    return {
        "id": f"evt_{session['id'][-12:]}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                **copy.deepcopy(session),
                "status": "complete",
                "payment_status": "paid",
                "payment_intent": f"pi_{session['id'][-12:]}",
            }
        },
    }


async def assert_unpaid(world: StripeWorld, paid: dict[str, Any]) -> None:
    attempt = await world.attempt(paid["payment"]["attempt_id"])
    assert attempt["status"] == "unpaid", attempt
    assert await published(world.deps, SUCCEEDED) == []


async def test_the_genuine_event_pays(world: StripeWorld) -> None:
    """The control: the event the tests below spoil pays the order when left alone."""
    paid = await world.pay()
    response = await world.post_event(completed_event(paid["session"]))
    assert response.status_code == 200, response.text
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "paid"


@pytest.mark.parametrize("missing", ["amount_total", "currency"])
async def test_a_paid_event_that_does_not_say_how_much_pays_nothing(
    world: StripeWorld, missing: str
) -> None:
    paid = await world.pay()
    event = completed_event(paid["session"])
    del event["data"]["object"][missing]
    response = await world.post_event(event)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_payload"
    await assert_unpaid(world, paid)


SPOILED = {
    "amount as text": lambda e: e["data"]["object"].update(amount_total="abc"),
    "amount as float": lambda e: e["data"]["object"].update(amount_total=1e400),
    "amount as bool": lambda e: e["data"]["object"].update(amount_total=True),
    "negative amount": lambda e: e["data"]["object"].update(amount_total=-1),
    "currency as number": lambda e: e["data"]["object"].update(currency=978),
    "object null": lambda e: e["data"].update(object=None),
    "object a list": lambda e: e["data"].update(object=[]),
    "created as text": lambda e: e.update(created="abc"),
    "created huge": lambda e: e.update(created=10**30),
    "id a number": lambda e: e.update(id=7),
    "metadata a string": lambda e: e["data"]["object"].update(metadata="x"),
    "no data": lambda e: e.pop("data"),
}


@pytest.mark.parametrize("spoil", list(SPOILED))
async def test_a_malformed_signed_payload_is_400_and_changes_nothing(
    world: StripeWorld, spoil: str
) -> None:
    paid = await world.pay()
    event = completed_event(paid["session"])
    SPOILED[spoil](event)
    response = await world.post_event(event)
    assert response.status_code == 400, (spoil, response.status_code, response.text[:300])
    assert response.json()["code"] in ("invalid_payload", "validation_error")
    await assert_unpaid(world, paid)


async def test_a_signature_dated_in_the_future_is_refused(world: StripeWorld) -> None:
    paid = await world.pay()
    response = await world.post_event(
        completed_event(paid["session"]), timestamp=int(time.time()) + 3600
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_signature"
    await assert_unpaid(world, paid)
    # Within the tolerance (a clock a little ahead) it is still accepted.
    ahead = await world.post_event(
        completed_event(paid["session"]), timestamp=int(time.time()) + 60
    )
    assert ahead.status_code == 200, ahead.text


async def test_a_body_that_is_not_utf8_is_400(world: StripeWorld) -> None:
    paid = await world.pay()
    payload = b'{"id": "evt_\xff\xfe", "type": "checkout.session.completed"}'
    signature = sign_webhook(b"{}", world.fake.webhook_secret)
    response = await world.http.post(
        "/webhooks/stripe",
        content=payload,
        headers={"stripe-signature": signature, "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_payload"
    await assert_unpaid(world, paid)
