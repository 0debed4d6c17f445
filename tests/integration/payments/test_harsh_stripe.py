"""Stripe on a bad day: 200 checkouts (40 of them subscriptions) and 50 renewals while a share
of API requests fail transiently (429, 500, 503; some after Stripe did the work and lost the
answer) and webhooks arrive all at once and some of them twice. The payments app on real
PostgreSQL with the SDK's retries on, webhooks signed as Stripe signs them, and Stripe's own
habit of redelivering what was not answered 2xx. In the end: 0 lost, 0 doubled, 0 stuck."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.payments.test_stripe import StripeWorld, stripe_world
from tests.fakes.stripe_server import Harshness
from tests.unit.payments.builders import (
    ACTIVATED,
    REFUNDED,
    RENEWED,
    SUCCEEDED,
    billing,
    headers,
    published,
    start_payment,
    user,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

CHECKOUTS = 200
SUBSCRIPTIONS = 40
RENEWALS = 50
BATCH = 20  # shoppers at once
TRIES = 8  # a shopper's retries of one request (the checkout is idempotent)


def caller(world: StripeWorld) -> httpx.AsyncClient:
    """The app as its callers see it over HTTP: a failure is an answer (503 for an exhausted
    pool, 500), not an exception raised into the caller."""
    transport = httpx.ASGITransport(app=world.app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://payments")


async def until_answered(
    http: httpx.AsyncClient, method: str, path: str, body: Any, principal: Any = None
) -> Any:
    """A caller's request, retried (same body: idempotent) while the trouble shows."""
    for _ in range(TRIES):
        response = await http.request(method, path, json=body, headers=headers(principal))
        if response.status_code < 500:
            assert response.status_code in (200, 201), response.text
            return response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{method} {path} never answered: {response.text}")


async def checkout(world: StripeWorld, http: httpx.AsyncClient, recurring: bool) -> dict[str, Any]:
    shopper = user()
    customer = await until_answered(http, "POST", "/customers", billing(), shopper)
    body = start_payment(
        owner=shopper.owner,  # type: ignore[arg-type]
        customer_id=customer["id"],
        order_id=str(uuid.uuid4()),
        recurring=recurring,
    ).model_dump(mode="json")
    payment = await until_answered(http, "POST", "/payments", body)
    session_id = payment["checkout_url"].rstrip("/").rsplit("/", 1)[-1]
    report = await world.fake.state.complete_checkout_session(session_id)
    return {"order_id": body["order_id"], "attempt_id": payment["attempt_id"], "report": report}


async def redeliver_until_answered(world: StripeWorld) -> int:
    """Stripe retries every event its endpoint did not answer 2xx (for days); here, in rounds
    until none is left. The number of rounds it took."""
    state = world.fake.state
    for rounds in range(20):
        await world.fake.wait_for_deliveries()
        deliveries = state.webhooks.deliveries
        answered = {d.event_id for d in deliveries if d.status_code and d.status_code < 300}
        missing = {d.event_id for d in deliveries} - answered
        if not missing:
            return rounds
        for event_id in sorted(missing):
            await state.resend_event(event_id)
    raise AssertionError(f"events never answered 2xx: {sorted(missing)}")


async def test_nothing_is_lost_doubled_or_stuck_when_stripe_has_a_bad_day(
    tmp_path: Path, pg_database_url: str
) -> None:
    async with stripe_world(
        tmp_path,
        database_url=pg_database_url,
        stripe_max_network_retries=3,
        reconcile_after_s=3600,
    ) as world:
        harsh = Harshness(failure_rate=0.15, duplicate_rate=0.3, concurrent=True, seed=7)
        world.fake.state.be_harsh(harsh)
        http = caller(world)

        kinds = [True] * SUBSCRIPTIONS + [False] * (CHECKOUTS - SUBSCRIPTIONS)
        done: list[dict[str, Any]] = []
        for start in range(0, CHECKOUTS, BATCH):
            batch = kinds[start : start + BATCH]
            done += await asyncio.gather(*(checkout(world, http, r) for r in batch))
        await redeliver_until_answered(world)
        subscriptions = [
            c["report"].object["subscription"]
            for c, recurring in zip(done, kinds, strict=True)
            if recurring
        ]
        for number in range(RENEWALS):
            await world.fake.state.renew_subscription(subscriptions[number % SUBSCRIPTIONS])
        await redeliver_until_answered(world)

        assert harsh.injected >= 50  # the bad day happened
        duplicates = len(world.fake.state.webhooks.deliveries) - len(world.fake.state.events)
        assert duplicates > 0
        # Every checkout paid, once; no money taken twice, so nothing refunded.
        for attempt_id in (c["attempt_id"] for c in done):
            response = await world.http.get(f"/payments/{attempt_id}", headers=headers())
            assert response.json()["status"] == "paid", response.text
        succeeded = await published(world.deps, SUCCEEDED)
        assert sorted(e["order_id"] for e in succeeded) == sorted(c["order_id"] for c in done)
        assert await published(world.deps, REFUNDED) == []
        # Every subscription active once, every renewal recorded once.
        activated = await published(world.deps, ACTIVATED)
        assert len({e["subscription_id"] for e in activated}) == len(activated) == SUBSCRIPTIONS
        renewed = await published(world.deps, RENEWED)
        invoices = [e["invoice_reference"] for e in renewed]
        assert len(set(invoices)) == len(invoices) == RENEWALS
