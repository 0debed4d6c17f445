"""Payments over HTTP with the dev provider: attempts, the hosted page, Pay / Decline,
subscriptions."""

from __future__ import annotations

import asyncio
from typing import Any

from libs.contracts.common import Principal
from libs.contracts.money import format_money
from libs.contracts.payments import PaymentLine
from tests.api.payments.conftest import PaymentsApi
from tests.api.payments.test_customers import problem
from tests.support.services import send_without_credential
from tests.unit.payments.builders import (
    ACTIVATED,
    CANCELED,
    FAILED,
    REFUNDED,
    RENEWED,
    SUCCEEDED,
    headers,
    published,
    start_payment,
    user,
)


async def pay_request(api: PaymentsApi, shopper: Principal, **overrides: Any) -> dict[str, Any]:
    customer = await api.create_customer(shopper)
    data = start_payment(owner=shopper.owner, customer_id=customer["id"], **overrides)  # type: ignore[arg-type]
    return data.model_dump(mode="json")


async def start(api: PaymentsApi, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.http.post("/payments", json=body, headers=headers())
    assert response.status_code == status, response.text
    return dict(response.json())


async def test_payments_need_the_service_token(api: PaymentsApi) -> None:
    body = await pay_request(api, user())
    missing = await send_without_credential(api.http, "POST", "/payments", json=body)
    problem(missing, 401, "invalid_service_token")
    wrong = {"x-service-token": "guess"}
    problem(await api.http.post("/payments", json=body, headers=wrong), 401)
    problem(await send_without_credential(api.http, "GET", "/payments/anything"), 401)


async def test_a_payment_opens_a_dev_checkout_and_a_retry_returns_it(api: PaymentsApi) -> None:
    body = await pay_request(api, user())
    first = await start(api, body)
    assert first["status"] == "unpaid"
    assert first["checkout_url"] == (
        f"http://shop.test:8000/api/payments/dev-checkout/{first['attempt_id']}"
    )
    assert await start(api, body, status=200) == first
    fresh = await start(api, {**body, "new_attempt": True})
    assert fresh["attempt_id"] != first["attempt_id"]


async def test_the_amount_must_be_the_lines(api: PaymentsApi) -> None:
    body = await pay_request(api, user(), recurring=True)
    found = problem(
        await api.http.post(
            "/payments", json={**body, "amount": body["amount"] + 1}, headers=headers()
        ),
        422,
        "amount_mismatch",
    )
    assert found["errors"][0]["field"] == "amount"
    mixed = [
        PaymentLine(pricing_id="a", name="A", unit_amount=100, quantity=1, interval="month"),
        PaymentLine(pricing_id="b", name="B", unit_amount=100, quantity=1, interval="year"),
    ]
    body = await pay_request(api, user(), lines=mixed)
    problem(await api.http.post("/payments", json=body, headers=headers()), 422, "mixed_intervals")


async def test_the_check_answers_what_a_payment_would_and_writes_nothing(
    api: PaymentsApi,
) -> None:
    mixed = [
        PaymentLine(pricing_id="a", name="A", unit_amount=100, quantity=1, interval="month"),
        PaymentLine(pricing_id="b", name="B", unit_amount=100, quantity=2, interval="year"),
    ]
    body: dict[str, Any] = {
        "amount": 300,
        "currency": "EUR",
        "lines": [m.model_dump(mode="json") for m in mixed],
    }
    problem(
        await api.http.post("/payments/check", json=body, headers=headers()), 422, "mixed_intervals"
    )
    problem(
        await api.http.post("/payments/check", json={**body, "currency": "XYZ"}, headers=headers()),
        422,
        "unknown_currency",
    )
    one = {**body, "amount": 100, "lines": body["lines"][:1]}
    ok = await api.http.post("/payments/check", json=one, headers=headers())
    assert ok.status_code == 204, ok.text
    missing = await send_without_credential(api.http, "POST", "/payments/check", json=one)
    problem(missing, 401, "invalid_service_token")
    assert await published(api.deps) == []


async def test_the_dev_page_shows_the_order_and_its_buttons(api: PaymentsApi) -> None:
    lines = [
        PaymentLine(pricing_id="p1", name="Mug <blue>", unit_amount=1250, quantity=2),
        PaymentLine(pricing_id="p2", name="Poster", unit_amount=999, quantity=1),
    ]
    body = await pay_request(api, user(), lines=lines)
    payment = await start(api, body)
    page = await api.http.get(f"/dev-checkout/{payment['attempt_id']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert body["order_number"] in html
    assert "Mug &lt;blue&gt;" in html and "Mug <blue>" not in html
    for amount in (1250, 2500, 999, 3499):
        assert format_money(amount, "EUR") in html
    assert f'action="{payment["checkout_url"]}/pay"' in html
    assert f'action="{payment["checkout_url"]}/decline"' in html
    problem(await api.http.get("/dev-checkout/unknown-attempt"), 404, "payment_not_found")


async def test_pay_is_a_verified_payment_once(api: PaymentsApi) -> None:
    body = await pay_request(api, user())
    payment = await start(api, body)
    url = f"/dev-checkout/{payment['attempt_id']}"
    pressed = await api.http.post(f"{url}/pay")
    assert pressed.status_code == 303
    assert pressed.headers["location"] == (
        f"https://shop.example/thanks?session=dev_cs_{payment['attempt_id']}"
    )
    again = await api.http.post(f"{url}/pay")  # a double click lands at the same place
    assert again.status_code == 303 and again.headers["location"] == pressed.headers["location"]
    problem(await api.http.post(f"{url}/decline"), 409, "checkout_closed")

    attempt = (await api.http.get(f"/payments/{payment['attempt_id']}", headers=headers())).json()
    assert attempt["status"] == "paid" and attempt["checkout_url"] is None
    [succeeded] = await published(api.deps, SUCCEEDED)
    assert succeeded["order_id"] == body["order_id"] and succeeded["amount"] == body["amount"]
    assert succeeded["provider"] == "dev"
    problem(
        await api.http.post("/payments", json=body, headers=headers()), 409, "order_already_paid"
    )
    page = await api.http.get(url)
    assert "paid" in page.text and "<button" not in page.text


async def test_decline_then_pay_again_with_a_new_attempt(api: PaymentsApi) -> None:
    body = await pay_request(api, user())
    first = await start(api, body)
    declined = await api.http.post(f"/dev-checkout/{first['attempt_id']}/decline")
    assert declined.status_code == 303 and declined.headers["location"] == body["cancel_url"]
    [failed] = await published(api.deps, FAILED)
    assert failed["attempt_id"] == first["attempt_id"] and failed["reason"] == "declined"
    # The declined checkout is closed; a retry without new_attempt opens a new one anyway.
    problem(await api.http.post(f"/dev-checkout/{first['attempt_id']}/pay"), 409, "checkout_closed")
    second = await start(api, body)
    assert second["attempt_id"] != first["attempt_id"]
    paid = await api.http.post(f"/dev-checkout/{second['attempt_id']}/pay")
    assert paid.status_code == 303
    order = (await api.http.get(f"/orders/{body['order_id']}/payments", headers=headers())).json()
    assert [a["status"] for a in order] == ["failed", "paid"]
    assert len(await published(api.deps, SUCCEEDED)) == 1


async def test_pay_on_the_old_page_racing_pay_again_takes_money_once(api: PaymentsApi) -> None:
    for _ in range(5):
        body = await pay_request(api, user())
        old = await start(api, body)
        pressed, again = await asyncio.gather(
            api.http.post(f"/dev-checkout/{old['attempt_id']}/pay"),
            api.http.post("/payments", json={**body, "new_attempt": True}, headers=headers()),
        )
        if again.status_code == 201:  # the new attempt won: the old page closed (or refunds)
            problem(pressed, 409, "checkout_closed")
            paid = await api.http.post(f"/dev-checkout/{again.json()['attempt_id']}/pay")
            assert paid.status_code == 303
        else:  # the old page won: the order is paid, nothing opens again
            assert pressed.status_code == 303
            problem(again, 409, "order_already_paid")
        order = await api.http.get(f"/orders/{body['order_id']}/payments", headers=headers())
        assert [a["status"] for a in order.json()].count("paid") == 1
        refund_required = {a["attempt_id"] for a in order.json() if a["refund_required"]}
        refunded = {p["attempt_id"] for p in await published(api.deps, REFUNDED)}
        assert refund_required <= refunded
    assert len(await published(api.deps, SUCCEEDED)) == 5


async def test_subscriptions_activate_renew_and_cancel(api: PaymentsApi) -> None:
    shopper = user()
    body = await pay_request(api, shopper, recurring=True)
    payment = await start(api, body)
    await api.http.post(f"/dev-checkout/{payment['attempt_id']}/pay")
    [subscription] = (await api.http.get("/subscriptions", headers=headers(shopper))).json()
    assert subscription["status"] == "active" and subscription["order_id"] == body["order_id"]
    assert subscription["interval"] == "month" and subscription["amount"] == body["amount"]
    assert len(await published(api.deps, ACTIVATED)) == 1

    renew = f"/dev-checkout/subscriptions/{subscription['id']}/renew"
    renewed = (await api.http.post(renew)).json()
    assert renewed["renewals"] == 1
    assert renewed["current_period_end"] > subscription["current_period_end"]
    [event] = await published(api.deps, RENEWED)
    assert event["subscription_id"] == subscription["id"] and event["amount"] == body["amount"]

    stranger = user()
    problem(
        await api.http.post(
            f"/subscriptions/{subscription['id']}/cancel", headers=headers(stranger)
        ),
        404,
        "subscription_not_found",
    )
    assert (await api.http.get("/subscriptions", headers=headers(stranger))).json() == []
    canceled = await api.http.post(
        f"/subscriptions/{subscription['id']}/cancel", headers=headers(shopper)
    )
    assert canceled.status_code == 200 and canceled.json()["cancel_at_period_end"] is True
    assert canceled.json()["status"] == "active"
    await api.http.post(f"/subscriptions/{subscription['id']}/cancel", headers=headers(shopper))
    [announced] = await published(api.deps, CANCELED)
    assert announced["at_period_end"] is True

    # At the end of the period a subscription set to cancel ends instead of renewing.
    ended = (await api.http.post(renew)).json()
    assert ended["status"] == "canceled" and ended["renewals"] == 1
    problem(await api.http.post(renew), 409, "subscription_ended")
    assert len(await published(api.deps, CANCELED)) == 1
