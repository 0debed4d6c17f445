"""A real browser (Debian's chromium, driven by Playwright) clicking through the storefront,
against `store dev` and against the distributed mode.

Screenshots of every step go to `.artefacts/browser/<mode>/` (git-ignored). With
`STORE_DOCS_SCREENSHOTS=1` the steps marked for the README are also written to
docs/screenshots/ (see the README's storefront section).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import unavailable
from tests.support.cluster import REPO, RunningStore, distributed, embedded

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("STORE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTEFACTS = REPO / ".artefacts" / "browser"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
IDEMPOTENT = re.compile(
    r"^/api/(store/cart/lines|store/checkout|store/orders/[^/]+/pay|payments/billing)$"
)
LAPTOP = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}

# The distributed mode serves the storefront and the dev login only when asked, and the dev
# payment page only with the dev provider chosen explicitly; plain HTTP needs a non-Secure cookie.
DISTRIBUTED_SHOP_ENV = {
    "GATEWAY_STOREFRONT_ENABLED": "true",
    "GATEWAY_STOREFRONT_DEV_LOGIN": "true",
    "GATEWAY_COOKIE_SECURE": "false",
    "PAYMENTS_PROVIDER": "dev",
}


# Module scope, not session: Playwright's sync API runs an event loop on this thread, which
# must be gone before any later asyncio test (or the distributed store's clean-up) runs.
@pytest.fixture(scope="module", params=["embedded", "distributed"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStore]:
    if request.param == "embedded":
        with embedded(tmp_path_factory.mktemp("shop-embedded")) as running:
            yield running
        return
    with distributed(
        postgres_url=request.getfixturevalue("postgres_server_url"),
        redis_url=request.getfixturevalue("redis_url"),
        amqp_url=request.getfixturevalue("amqp_url"),
        log_dir=tmp_path_factory.mktemp("shop-distributed"),
        extra_env=DISTRIBUTED_SHOP_ENV,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser(store: RunningStore) -> Iterator[object]:
    """Chromium, started after the store: Playwright's sync API holds the thread's event loop
    while it runs, and starting or stopping the distributed store needs that loop free."""
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        unavailable(f"no browser at {CHROMIUM} (apt-get install chromium)")
    # How long the page may take to show what a step waits for (the distributed mode's event
    # round trips on a busy machine); a page that never shows it fails.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Shop:
    """One shopper's browser tab on the storefront, and the screenshots it takes."""

    page: object
    base_url: str
    folder: Path
    steps: list[str] = field(default_factory=list)
    posts: list[tuple[str, str | None]] = field(default_factory=list)

    def action_keys(self) -> dict[str, list[str | None]]:
        """The Idempotency-Key of each POST that must carry one, by path."""
        keys: dict[str, list[str | None]] = {}
        for url, key in self.posts:
            path = urlsplit(url).path
            if IDEMPOTENT.match(path):
                keys.setdefault(re.sub(r"/orders/[^/]+/", "/orders/ID/", path), []).append(key)
        return keys

    def open(self, path: str = "/shop/") -> None:
        self.page.goto(self.base_url + path)  # type: ignore[attr-defined]

    def shot(self, name: str, *, docs: bool = False) -> None:
        """Screenshot this step; `docs` ones also go to docs/screenshots when asked to."""
        self.steps.append(name)
        path = self.folder / f"{len(self.steps):02d}-{name}.png"
        self.page.screenshot(path=path, full_page=True)  # type: ignore[attr-defined]
        if docs and os.environ.get("STORE_DOCS_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")

    def shot_phone(self, name: str, *, docs: bool = False) -> None:
        """The same step on a phone-width screen."""
        size = self.page.viewport_size  # type: ignore[attr-defined]
        self.page.set_viewport_size(PHONE)  # type: ignore[attr-defined]
        try:
            self.shot(name, docs=docs)
        finally:
            self.page.set_viewport_size(size)  # type: ignore[attr-defined]


@pytest.fixture
def shop(browser: object, store: RunningStore, request: pytest.FixtureRequest) -> Iterator[Shop]:
    """A fresh shopper (own cookies and storage) on a laptop-sized screen."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport=LAPTOP, locale="en-GB"
    )
    context.set_default_timeout(15_000)
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)
    folder = ARTEFACTS / store.mode / test
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    shop = Shop(page=page, base_url=store.base_url, folder=folder)
    page.on(
        "request",
        lambda r: (
            shop.posts.append((r.url, r.headers.get("idempotency-key")))
            if r.method == "POST"
            else None
        ),
    )
    try:
        yield shop
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
