"""The public origin, in both modes: links and redirects are built on the configured address,
never on the request's `Host`; a request for another host is refused; a payment returns the
shopper only to allowed hosts (homographs, user info and bad ports refused); the distributed
mode does not start without the origin."""

from __future__ import annotations

import http.client
import json
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.helpers import PROBLEM, assert_problem
from tests.security.conftest import (
    ALIAS_HOST,
    CHECKOUT,
    LIMITS,
    SHIPPING,
    URLS,
    Victim,
    new_victim,
    random_address,
)
from tests.support.cluster import (
    REPO,
    RunningStore,
    _base_env,
    distributed,
    distributed_secrets,
    embedded,
    free_port,
    store_command,
)


def raw_request(
    store: RunningStore,
    method: str,
    path: str,
    *,
    host: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    """One request to the store's port with exactly this `Host` header (and no other)."""
    url = urlsplit(store.base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=15)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("host", host)
        for name, value in {"x-forwarded-for": random_address(), **(headers or {})}.items():
            connection.putheader(name, value)
        connection.putheader("content-length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def port_of(store: RunningStore) -> int:
    return urlsplit(store.base_url).port or 80


FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:{port}",
    "127.0.0.1.evil.example:{port}",
    "xn--vil-qdd.example",  # the homograph \u0435vil.example as it travels in a Host header
    "[::2]:{port}",
]


CYRILLIC_E = "\u0435"  # looks like a Latin e

# --- the Host header -------------------------------------------------------------------------


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
async def test_a_request_for_another_host_is_refused_and_changes_nothing(
    store: RunningStore, victim: Victim, host: str
) -> None:
    host = host.format(port=port_of(store))
    before = await victim.state()
    for method, path, body in [
        ("POST", "/api/store/cart/lines", {"pricing_id": victim.price["id"]}),
        ("POST", "/api/store/checkout", URLS),
        ("GET", "/api/store/cart", None),
    ]:
        response = await victim.http.request(method, path, json=body, headers={"host": host})
        assert_problem(response, 400, "invalid_host")
        assert "evil" not in response.text and store.base_url in response.json()["detail"]
    # The slash redirect is refused too, instead of pointing to the foreign host.
    status, headers, answer = raw_request(store, "GET", "/api/store/cart/", host=host)
    assert status == 400, (status, headers, answer[:200])
    assert "location" not in headers and headers["content-type"].startswith(PROBLEM)
    assert json.loads(answer)["code"] == "invalid_host"
    assert await victim.state() == before


async def test_checkout_links_are_on_the_public_origin_whatever_the_host(
    store: RunningStore, victim: Victim
) -> None:
    # An allowed second name, and forwarded headers a proxy might pass on: neither moves links.
    headers = {
        "host": f"{ALIAS_HOST}:{port_of(store)}",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil.example",
    }
    response = await victim.http.post("/api/store/checkout", json=CHECKOUT, headers=headers)
    assert response.status_code == 200, response.text
    link = response.json()["payment"]["checkout_url"]
    assert link.startswith(f"{store.base_url}/api/payments/dev-checkout/"), link
    order_id = response.json()["order"]["id"]
    again = await victim.http.post(f"/api/store/orders/{order_id}/pay", json=URLS, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["payment"]["checkout_url"].startswith(f"{store.base_url}/api/payments/")
    # The link works: the page it names is the order's.
    page = await victim.http.get(urlsplit(link).path)
    assert page.status_code == 200 and response.json()["order"]["number"] in page.text


async def test_a_slash_redirect_points_to_the_public_origin(store: RunningStore) -> None:
    for host in (f"{ALIAS_HOST}:{port_of(store)}", f"{ALIAS_HOST}"):
        status, headers, _ = raw_request(
            store, "GET", "/api/store/cart/", host=host, headers={"x-forwarded-proto": "https"}
        )
        assert status == 307, (status, headers)
        assert headers["location"] == f"{store.base_url}/api/store/cart", headers


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_any_host(store: RunningStore, path: str) -> None:
    # As a kubelet or a scraper asks: by the pod's own address.
    status, _, body = raw_request(store, "GET", path, host="10.1.2.3:8000")
    assert status == 200, body[:300]
    status, _, body = raw_request(store, "GET", "/api/store/products", host="10.1.2.3:8000")
    assert status == 400 and json.loads(body)["code"] == "invalid_host"


# --- return URLs -----------------------------------------------------------------------------

# The tests' stores allow `shop.example` (GATEWAY_RETURN_URL_HOSTS) besides their own address.
OFF_THE_LIST = [
    "https://evil.example/thanks",
    f"https://{CYRILLIC_E}vil.example/thanks",  # a homograph of evil.example
    f"https://shop.{CYRILLIC_E}xample/thanks",  # a homograph of the listed host
    "https://xn--shop-ntd.example/thanks",
    "https://shop.example.evil.example/thanks",
    "https://shop.example@evil.example/thanks",
    "https://shop.example:443@evil.example/thanks",
    "https://evil.example#@shop.example/thanks",
    "https://shop.example:0/thanks",
    "https://shop.example:65536/thanks",
    "https://shop.example:99999/thanks",
    "https://shop.example:abc/thanks",
    "https://shop.example:-1/thanks",
    "https://shop.example:443:443/thanks",
]


@pytest.mark.parametrize("bad", OFF_THE_LIST)
async def test_a_return_url_off_the_allowed_hosts_or_with_a_bad_port_is_refused(
    victim: Victim, bad: str
) -> None:
    before = await victim.state()
    for urls in ({**URLS, "success_url": bad}, {**URLS, "cancel_url": bad}):
        response = await victim.http.post("/api/store/checkout", json=urls)
        assert_problem(response, 422, "invalid_return_url")
    assert await victim.state() == before


async def test_return_urls_on_allowed_hosts_and_ports_are_accepted(
    store: RunningStore, victim: Victim
) -> None:
    urls = {
        "success_url": "https://SHOP.example.:8443/thanks?order=1",
        "cancel_url": f"{store.base_url}/shop/#/cart",
        **SHIPPING,
    }
    response = await victim.http.post("/api/store/checkout", json=urls)
    assert response.status_code == 200, response.text


# --- the default: the public origin's host only ----------------------------------------------


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def default_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStore]:
    """A store with GATEWAY_RETURN_URL_HOSTS left empty, as an operator would leave it."""
    env = {**LIMITS, "GATEWAY_RETURN_URL_HOSTS": ""}
    if request.param == "embedded":
        with embedded(tmp_path_factory.mktemp("origin-embedded"), extra_env=env) as running:
            yield running
        return
    with distributed(
        postgres_url=request.getfixturevalue("postgres_server_url"),
        redis_url=request.getfixturevalue("redis_url"),
        amqp_url=request.getfixturevalue("amqp_url"),
        log_dir=tmp_path_factory.mktemp("origin-distributed"),
        extra_env=env,
    ) as running:
        yield running


@pytest.fixture
async def default_victim(default_store: RunningStore) -> AsyncIterator[Victim]:
    clients: list[httpx.AsyncClient] = []

    def make(**headers: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=default_store.base_url,
            timeout=15,
            headers={"x-forwarded-for": random_address(), **headers},
        )
        clients.append(client)
        return client

    async with new_victim(make) as victim:
        yield victim
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize(
    "bad",
    [
        "https://evil.example/thanks",
        f"https://{CYRILLIC_E}vil.example/thanks",
        "https://shop.example/thanks",
    ],
)
async def test_by_default_a_payment_returns_only_to_the_public_origin(
    default_store: RunningStore, default_victim: Victim, bad: str
) -> None:
    own = {"success_url": f"{default_store.base_url}/shop/#/thanks", "cancel_url": bad, **SHIPPING}
    before = await default_victim.state()
    for urls in (own, {"success_url": bad, "cancel_url": own["success_url"]}):
        response = await default_victim.http.post("/api/store/checkout", json=urls)
        assert_problem(response, 422, "invalid_return_url")
    assert await default_victim.state() == before
    own["cancel_url"] = f"{default_store.base_url}/shop/#/cart"
    accepted = await default_victim.http.post("/api/store/checkout", json=own)
    assert accepted.status_code == 200, accepted.text


# --- starting without the origin -------------------------------------------------------------


def _exits(command: list[str], env: dict[str, str]) -> tuple[int | None, str]:
    """Run `command` until it exits (or 60 s pass); its exit code and output."""
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        return None, output.decode(errors="replace")
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize(
    "public_url",
    [None, "", "shop.example", "https://shop.example/shop", "https://user@shop.example"],
)
def test_the_distributed_gateway_refuses_to_start_without_a_public_origin(
    tmp_path: Path, public_url: str | None
) -> None:
    env = _base_env(
        STORE_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/",
        STORE_REDIS_URL="redis://127.0.0.1:6379/0",
        STORE_DATA_DIR=str(tmp_path),
        GATEWAY_COOKIE_SECURE="false",
        **distributed_secrets(),
        **({} if public_url is None else {"GATEWAY_PUBLIC_URL": public_url}),
    )
    code, output = _exits(store_command("serve", "gateway", "--port", str(free_port())), env)
    assert code not in (None, 0), output[-2000:]
    assert "GATEWAY_PUBLIC_URL" in output, output[-2000:]


def test_store_dev_refuses_an_invalid_public_origin(tmp_path: Path) -> None:
    env = _base_env(STORE_DATA_DIR=str(tmp_path), GATEWAY_PUBLIC_URL="https://shop.example/x")
    code, output = _exits(store_command("dev", "--port", str(free_port())), env)
    assert code not in (None, 0), output[-2000:]
    assert "GATEWAY_PUBLIC_URL" in output, output[-2000:]
