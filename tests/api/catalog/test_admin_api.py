"""The write API over HTTP: the service token, every bad input as a 422 naming the field,
conflicts, image uploads and refusals (nothing left on disk), events through the outbox."""

from __future__ import annotations

import asyncio
import io
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from PIL import Image

from libs.contracts.envelope import Envelope
from libs.contracts.events import PricingChanged, ProductChanged
from services.catalog.app import create_app
from services.catalog.settings import CatalogSettings
from tests.api.catalog.support import ADMIN, MediaFiles, catalog_settings, problem
from tests.support.services import send_without_credential

# One app for the module (tests use their own random product keys): migrating a fresh
# database per test would dominate the run time.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> CatalogSettings:
    return catalog_settings(tmp_path_factory.mktemp("catalog"), max_image_bytes=200_000)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(settings: CatalogSettings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://catalog", headers=ADMIN
    ) as client:
        yield client


@pytest.fixture(scope="module")
def media_files(settings: CatalogSettings) -> MediaFiles:
    def files() -> set[Path]:
        root = settings.resolved_media_dir()
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}

    return files


# --------------------------------------------------------------------------------- builders


def new_key() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def product_body(key: str | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": new_key() if key is None else key,
        "tax_code": "general",
        "shippable": True,
        "translations": {"en": {"name": "Mug", "statement_descriptor": "STORE MUG"}},
        "prices": [{"unit_amount": 1290, "currency": "EUR"}],
    }
    body.update(changes)
    return body


async def create(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/admin/products", json=product_body(**changes), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def picture(size: tuple[int, int], format_: str, **options: Any) -> bytes:
    image = Image.new("RGB", size, "white")
    image.paste((200, 30, 30), (0, 0, size[0] // 2, size[1]))  # left half red
    buffer = io.BytesIO()
    image.save(buffer, format=format_, **options)
    return buffer.getvalue()


def rotated_jpeg() -> bytes:
    """A 300x100 JPEG whose EXIF says "rotate 90° clockwise to view" (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return picture((300, 100), "JPEG", exif=exif.tobytes())


def png_bomb(width: int = 9000, height: int = 9000) -> bytes:
    """A valid 1-bit PNG, small on disk, 81 megapixels once decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    raw = bytes((1 + (width + 7) // 8) * height)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


async def upload(
    client: httpx.AsyncClient, key: str, data: bytes, name: str = "image.png", **form: str
) -> httpx.Response:
    return await client.post(
        f"/admin/products/{key}/images",
        files={"file": (name, data, "application/octet-stream")},
        data=form,
        headers=ADMIN,
    )


# --------------------------------------------------------------------------------- the token


@pytest.mark.parametrize("headers", [{}, {"x-service-token": "wrong"}])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/products"),
        ("PATCH", "/admin/products/mug"),
        ("POST", "/admin/products/mug/prices"),
        ("POST", "/admin/products/mug/images"),
        ("PUT", "/admin/tax-rates/DE"),
        ("GET", "/admin/products/mug"),
    ],
)
async def test_the_write_api_needs_the_service_token(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    if headers:
        response = await client.request(method, path, json={}, headers=headers)
    else:
        response = await send_without_credential(client, method, path, json={})
    problem(response, 401, "invalid_service_token")


# --------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        (
            {"prices": [{"unit_amount": 100, "currency": "XYZ"}]},
            "prices.0.currency",
            "unknown_currency",
        ),
        (
            {"prices": [{"unit_amount": -1, "currency": "EUR"}]},
            "prices.0.unit_amount",
            "validation_error",
        ),
        (
            {"prices": [{"unit_amount": 1.5, "currency": "EUR"}]},
            "prices.0.unit_amount",
            "validation_error",
        ),
        (
            {
                "prices": [
                    {
                        "unit_amount": 100,
                        "currency": "EUR",
                        "interval": "month",
                        "interval_count": 13,
                    }
                ]
            },
            "prices.0.interval_count",
            "invalid_interval",
        ),
        (
            {"prices": [{"unit_amount": 1, "currency": "EUR", "interval": "hour"}]},
            "prices.0.interval",
            "validation_error",
        ),
        ({"translations": {"xx-YY": {"name": "Mug"}}}, "translations.xx-YY", "unknown_locale"),
        ({"translations": {}}, "translations", "validation_error"),
        ({"translations": {"en": {"name": ""}}}, "translations.en.name", "validation_error"),
        (
            {"translations": {"en": {"name": "Mug", "statement_descriptor": "A" * 23}}},
            "translations.en.statement_descriptor",
            "invalid_statement_descriptor",
        ),
        (
            {"translations": {"en": {"name": "Mug", "statement_descriptor": "SHOP*MUG"}}},
            "translations.en.statement_descriptor",
            "invalid_statement_descriptor",
        ),
        ({"key": "has space"}, "key", "invalid_product_key"),
        ({"key": ""}, "key", "validation_error"),
        ({"tax_code": "no spaces please"}, "tax_code", "invalid_tax_code"),
    ],
)
async def test_bad_product_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str, code: str
) -> None:
    body = product_body(**changes)
    problem(await client.post("/admin/products", json=body, headers=ADMIN), 422, code, field)
    if body["key"]:  # nothing was created, not even half
        gone = await client.get(f"/admin/products/{body['key']}", headers=ADMIN)
        problem(gone, 404, "product_not_found")


async def test_a_duplicate_key_is_409(client: httpx.AsyncClient) -> None:
    product = await create(client)
    response = await client.post(
        "/admin/products", json=product_body(product["key"]), headers=ADMIN
    )
    problem(response, 409, "product_exists", "key")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"unit_amount": 100, "currency": "ABC"}, "currency", "unknown_currency"),
        ({"unit_amount": -5, "currency": "EUR"}, "unit_amount", "validation_error"),
        (
            {"unit_amount": 100, "currency": "EUR", "interval": "year", "interval_count": 2},
            "interval_count",
            "invalid_interval",
        ),
        (
            {"unit_amount": 100, "currency": "EUR", "interval_count": 3},
            "interval_count",
            "invalid_interval",
        ),
        ({"currency": "EUR"}, "unit_amount", "validation_error"),
    ],
)
async def test_bad_prices_are_422_on_add_and_on_change(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, code: str
) -> None:
    product = await create(client)
    key, pricing_id = product["key"], product["prices"][0]["id"]
    add = await client.post(f"/admin/products/{key}/prices", json=body, headers=ADMIN)
    problem(add, 422, code, field)
    change = await client.put(
        f"/admin/products/{key}/prices/{pricing_id}", json=body, headers=ADMIN
    )
    problem(change, 422, code, field)


@pytest.mark.parametrize(
    ("locale", "body", "field", "code"),
    [
        ("klingon", {"name": "Becher"}, "locale", "unknown_locale"),
        (
            "de",
            {"name": "Becher", "statement_descriptor": "ABC"},
            "statement_descriptor",
            "invalid_statement_descriptor",
        ),
        (
            "de",
            {"name": "Becher", "statement_descriptor": "1234567"},
            "statement_descriptor",
            "invalid_statement_descriptor",
        ),
        ("de", {"description": "no name"}, "name", "validation_error"),
    ],
)
async def test_bad_translations_are_422(
    client: httpx.AsyncClient, locale: str, body: dict[str, Any], field: str, code: str
) -> None:
    product = await create(client)
    response = await client.put(
        f"/admin/products/{product['key']}/translations/{locale}", json=body, headers=ADMIN
    )
    problem(response, 422, code, field)


@pytest.mark.parametrize(
    ("country", "rates", "field", "code"),
    [
        ("XX", [], "country_code", "unknown_country"),
        (
            "DE",
            [{"display_name": "x", "percentage": "101", "inclusive": True}],
            "rates.0.percentage",
            "validation_error",
        ),
        (
            "DE",
            [{"display_name": "x", "percentage": "-1", "inclusive": True}],
            "rates.0.percentage",
            "validation_error",
        ),
        (
            "DE",
            [{"display_name": "", "percentage": "19", "inclusive": True}],
            "rates.0.display_name",
            "validation_error",
        ),
        (
            "DE",
            [{"display_name": "x", "percentage": "19", "inclusive": True, "tax_code": "a b"}],
            "rates.0.tax_code",
            "invalid_tax_code",
        ),
    ],
)
async def test_bad_tax_rates_are_422(
    client: httpx.AsyncClient, country: str, rates: list, field: str, code: str
) -> None:
    response = await client.put(f"/admin/tax-rates/{country}", json={"rates": rates}, headers=ADMIN)
    problem(response, 422, code, field)


async def test_bad_updates_and_unknown_things(client: httpx.AsyncClient) -> None:
    product = await create(client)
    key = product["key"]
    bad = await client.patch(f"/admin/products/{key}", json={"active": None}, headers=ADMIN)
    problem(bad, 422, "validation_error", "active")
    problem(
        await client.patch("/admin/products/nope", json={}, headers=ADMIN), 404, "product_not_found"
    )
    missing_price = await client.post(
        f"/admin/products/{key}/prices/nope/deactivate", headers=ADMIN
    )
    problem(missing_price, 404, "pricing_not_found")
    missing_image = await client.delete(f"/admin/products/{key}/images/nope", headers=ADMIN)
    problem(missing_image, 404, "image_not_found")
    last = await client.delete(f"/admin/products/{key}/translations/en", headers=ADMIN)
    problem(last, 409, "last_translation")


# --------------------------------------------------------------------------------- writes


async def test_product_lifecycle_through_the_write_api(client: httpx.AsyncClient) -> None:
    product = await create(client, prices=[])
    key = product["key"]
    assert product["sellable"] is False
    inactive = (await client.get("/products", params={"active": "false", "limit": 100})).json()
    assert key in [p["key"] for p in inactive["items"]]

    price = await client.post(
        f"/admin/products/{key}/prices",
        json={"unit_amount": 900, "currency": "jpy", "interval": "month"},
        headers=ADMIN,
    )
    assert price.status_code == 201
    assert (price.json()["currency"], price.json()["used"]) == ("JPY", False)
    german = await client.put(
        f"/admin/products/{key}/translations/de-DE", json={"name": "Becher"}, headers=ADMIN
    )
    assert german.json()["locale"] == "de-DE"

    listed = (await client.get(f"/products/{key}", params={"locale": "de"})).json()
    assert (listed["name"], listed["active"]) == ("Becher", True)

    changed = await client.patch(
        f"/admin/products/{key}", json={"shippable": False, "tax_code": None}, headers=ADMIN
    )
    assert (changed.json()["shippable"], changed.json()["tax_code"]) == (False, None)
    assert (
        await client.delete(f"/admin/products/{key}/translations/de-DE", headers=ADMIN)
    ).status_code == 204
    assert (await client.get(f"/products/{key}", params={"locale": "de"})).json()["name"] == "Mug"


async def test_a_price_change_is_published_through_the_outbox(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = new_key()
    received: list[Envelope] = []
    both_seen = asyncio.Event()

    async def probe(envelope: Envelope) -> None:
        # The app is shared by the module: only this test's product counts.
        if envelope.payload.get("product_key") != key:
            return
        received.append(envelope)
        states = {e.payload["active"] for e in received if e.type == PricingChanged.event_type}
        if states == {True, False}:
            both_seen.set()

    bus = app.state.deps.runtime.bus
    bus.subscribe("probe", {PricingChanged.event_type: probe, ProductChanged.event_type: probe})
    product = await create(client, key=key)
    old_id = product["prices"][0]["id"]

    deactivated = await client.post(
        f"/admin/products/{key}/prices/{old_id}/deactivate", headers=ADMIN
    )
    assert deactivated.json()["active"] is False

    await asyncio.wait_for(both_seen.wait(), 10)
    pricing_events = [e.payload for e in received if e.type == PricingChanged.event_type]
    # Created, then deactivated (consumers must not rely on the order of delivery).
    assert sorted((p["pricing_id"], p["active"]) for p in pricing_events) == [
        (old_id, False),
        (old_id, True),
    ]
    products = [e.payload for e in received if e.type == ProductChanged.event_type]
    assert products[-1]["sellable"] is False
    assert {e.producer for e in received} == {"catalog"}


# --------------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("data", "format_", "size"),
    [
        (picture((800, 600), "JPEG"), "jpeg", (800, 600)),
        (picture((600, 800), "PNG"), "png", (600, 800)),
        (picture((640, 480), "WEBP"), "webp", (640, 480)),
        (rotated_jpeg(), "jpeg", (100, 300)),
    ],
)
async def test_uploaded_images_get_thumbnails_of_the_right_size_and_orientation(
    client: httpx.AsyncClient, data: bytes, format_: str, size: tuple[int, int]
) -> None:
    product = await create(client)

    response = await upload(client, product["key"], data)

    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["width"], image["height"]) == size
    assert image["content_type"] == f"image/{format_}"
    for label, url in image["thumbnails"].items():
        served = await client.get(url)
        assert served.headers["content-type"] == f"image/{format_}"
        thumbnail = Image.open(io.BytesIO(served.content))
        scale = min(1, int(label) / max(size))
        assert thumbnail.size == (round(size[0] * scale), round(size[1] * scale))
    original = Image.open(io.BytesIO((await client.get(image["url"])).content))
    assert not original.getexif()  # metadata stripped
    if size == (100, 300):  # upright now: the red half is on top after turning clockwise
        assert original.convert("RGB").getpixel((50, 10))[0] > 150
        assert original.convert("RGB").getpixel((50, 290)) == (255, 255, 255)
    listed = (await client.get(f"/products/{product['key']}")).json()
    assert listed["images"][0]["url"] == image["url"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"just some text, renamed to .png", 415, "unsupported_image_format"),
        (picture((400, 300), "PNG")[:-200], 422, "image_truncated"),
        (png_bomb(), 422, "image_dimensions_too_large"),
        (bytes(210_000), 413, "image_too_large"),  # over the limit by a little: read, then refused
        (bytes(400_000), 413, "image_too_large"),  # far over: refused before reading the body
    ],
)
async def test_refused_uploads_are_4xx_and_leave_nothing_on_disk(
    client: httpx.AsyncClient, media_files: MediaFiles, data: bytes, status: int, code: str
) -> None:
    product = await create(client)
    await upload(client, product["key"], picture((50, 50), "PNG"))
    before = media_files()

    problem(await upload(client, product["key"], data, name="evil.png"), status, code, "file")

    assert media_files() == before
    assert len((await client.get(f"/products/{product['key']}")).json()["images"]) == 1


async def test_images_order_duplicates_and_deletion(
    client: httpx.AsyncClient, media_files: MediaFiles
) -> None:
    product = await create(client)
    key = product["key"]
    before = len(media_files())
    second = (await upload(client, key, picture((300, 300), "PNG"))).json()
    first = (await upload(client, key, picture((200, 200), "JPEG"), position="0")).json()
    assert second["position"] == 0 and first["position"] == 0
    duplicate = await upload(client, key, picture((300, 300), "PNG"))
    problem(duplicate, 409, "image_exists")
    problem(await upload(client, key, b"", position="x"), 422, "validation_error", "position")

    urls = [i["url"] for i in (await client.get(f"/products/{key}")).json()["images"]]
    assert urls == [second["url"], first["url"]]  # same position: the older one first
    assert len(media_files()) == before + 8  # two originals, three thumbnails each

    deleted = await client.delete(f"/admin/products/{key}/images/{second['id']}", headers=ADMIN)
    assert deleted.status_code == 204
    assert (await client.get(second["url"])).status_code == 404
    assert len(media_files()) == before + 4
    images = (await client.get(f"/products/{key}")).json()["images"]
    assert [i["url"] for i in images] == [first["url"]]


async def test_tax_rates_are_replaced_keeping_unchanged_ids(client: httpx.AsyncClient) -> None:
    rates = [
        {"display_name": "VAT 20%", "percentage": "20", "inclusive": True},
        {"display_name": "VAT 5%", "percentage": "5.0", "inclusive": True, "tax_code": "food"},
    ]
    first = (await client.put("/admin/tax-rates/gb", json={"rates": rates}, headers=ADMIN)).json()
    assert [(r["country_code"], r["percentage"]) for r in first] == [("GB", "20"), ("GB", "5.0")]

    rates[1]["percentage"] = "0"
    second = (await client.put("/admin/tax-rates/GB", json={"rates": rates}, headers=ADMIN)).json()

    assert second[0]["id"] == first[0]["id"] and second[1]["id"] != first[1]["id"]
    food = await client.get("/internal/tax-rates", params={"country": "GB", "tax_code": "food"})
    assert [r["percentage"] for r in food.json()] == ["0"]
