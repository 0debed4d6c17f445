"""`store dev`'s composition e-mails the shopper: the confirmation of a paid order is written as
an .eml file under the data folder."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.settings import EMBEDDED_PUBLIC_URL
from tests.e2e.helpers import billing, one_off_price

pytestmark = pytest.mark.e2e

URLS = {"success_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}


async def test_store_dev_writes_the_confirmation_of_a_paid_order_as_an_eml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.embedded import create_embedded_app
    from libs.runtime.settings import RuntimeSettings

    monkeypatch.setenv("GATEWAY_RETURN_URL_HOSTS", "shop.example")
    app = create_embedded_app(RuntimeSettings(data_dir=tmp_path))
    mail = tmp_path / "mail"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=EMBEDDED_PUBLIC_URL, timeout=15
        ) as http,
    ):
        price = await one_off_price(http)
        added = await http.post(
            "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 2}
        )
        assert added.status_code == 200, added.text
        checkout = await http.post(
            "/api/store/checkout",
            json={
                "billing": billing(email="grace@example.com"),
                "shipping": {"method": "standard"},
                **URLS,
            },
        )
        assert checkout.status_code == 200, checkout.text
        order = checkout.json()["order"]
        path = urlsplit(checkout.json()["payment"]["checkout_url"]).path
        assert (await http.post(f"{path}/pay")).status_code == 303

        for _ in range(200):
            files = sorted(mail.glob("*.eml")) if mail.exists() else []
            if files:
                break
            await asyncio.sleep(0.05)
    assert len(files) == 1, files
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "grace@example.com"
    assert message["Subject"] == f"Your order {order['number']} is confirmed"
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert order["number"] in body and "Total:" in body
    assert not list(mail.glob("*.part"))
