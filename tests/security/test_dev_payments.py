"""Free goods: the dev provider's Pay button marks orders paid, so outside the embedded mode
it exists only when chosen explicitly. These attacks need the distributed mode's processes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.e2e.helpers import assert_problem
from tests.security.conftest import CHECKOUT, URLS, Victim
from tests.support.cluster import RunningStore, _spawn, _wait_ready, free_port, store_command

pytestmark = pytest.mark.parametrize("store", ["distributed"], indirect=True)


def payments_env(store: RunningStore, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in store.env.items() if k != "PAYMENTS_PROVIDER"}
    return {**env, **changes}


@pytest.fixture
def stripe_payments(store: RunningStore) -> Iterator[str]:
    """A second payments process of the same store, configured as compose's operator would
    for Stripe: keys set, no provider named."""
    env = payments_env(
        store,
        PAYMENTS_STRIPE_SECRET_KEY="sk_test_not_used",
        PAYMENTS_STRIPE_WEBHOOK_SECRET="whsec_not_used",
        PAYMENTS_STRIPE_API_BASE="http://127.0.0.1:9",
    )
    port = free_port()
    name = "payments-stripe"
    store.processes[name] = _spawn(
        store_command("serve", "payments", "--port", str(port)), env, store.log_dir / f"{name}.log"
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", store, name)
        yield f"http://127.0.0.1:{port}"
    finally:
        store.stop(name)
        del store.processes[name]


def test_payments_without_a_provider_choice_refuses_to_start(store: RunningStore) -> None:
    result = subprocess.run(
        store_command("serve", "payments", "--port", str(free_port())),
        env=payments_env(store),
        capture_output=True,
        timeout=120,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode != 0
    for variable in (
        "PAYMENTS_STRIPE_SECRET_KEY",
        "PAYMENTS_STRIPE_WEBHOOK_SECRET",
        "PAYMENTS_PROVIDER",
    ):
        assert variable in output, output[-2000:]


async def test_dev_pay_is_not_even_mounted_with_stripe(
    store: RunningStore, stripe_payments: str, victim: Victim
) -> None:
    checkout = await victim.http.post("/api/store/checkout", json=CHECKOUT)
    assert checkout.status_code == 200, checkout.text
    order_id = checkout.json()["order"]["id"]
    attempt_id = checkout.json()["payment"]["attempt_id"]
    credential = {"x-service-token": store.env["STORE_SERVICE_TOKEN"]}
    async with httpx.AsyncClient(base_url=stripe_payments, headers=credential) as payments:
        for method, path in (
            ("GET", f"/dev-checkout/{attempt_id}"),
            ("POST", f"/dev-checkout/{attempt_id}/pay"),
            ("POST", f"/dev-checkout/subscriptions/{attempt_id}/renew"),
        ):
            assert_problem(await payments.request(method, path), 404, "not_found")
        attempt = await payments.get(f"/payments/{attempt_id}")
        assert attempt.status_code == 200 and attempt.json()["status"] == "unpaid"
    order = (await victim.http.get(f"/api/store/orders/{order_id}")).json()
    assert order["paid"] is None


async def test_the_explicit_dev_choice_still_pays_through_the_gateway(
    victim: Victim, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    """The control: with PAYMENTS_PROVIDER=dev (this store) the page does mark orders paid."""
    checkout = await victim.http.post("/api/store/checkout", json=CHECKOUT)
    assert checkout.status_code == 200, checkout.text
    url = checkout.json()["payment"]["checkout_url"]
    pressed = await victim.http.post(f"{url}/pay")
    assert pressed.status_code == 303 and pressed.headers["location"] == URLS["success_url"]
