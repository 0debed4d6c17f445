"""Whose address a request has: only configured proxies and front ends may say (issue: rate
limits spare shoppers and stop attackers)."""

from __future__ import annotations

import pytest

from gateway.forwarded import TrustedProxies, address_key, client_of, parse_address

PROXY = TrustedProxies.parse(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    "headers",
    [
        {"x-forwarded-for": "203.0.113.9"},
        {"forwarded": "for=203.0.113.9"},
        {"forwarded": 'for="203.0.113.9:5511";proto=https'},
        {"x-forwarded-for": "203.0.113.9, 10.1.2.3"},
        {"forwarded": "for=203.0.113.9, for=10.1.2.3"},
        {"forwarded": "for=203.0.113.9", "x-forwarded-for": "198.51.100.1"},
    ],
)
def test_a_trusted_proxy_names_the_client_either_way(headers: dict[str, str]) -> None:
    assert client_of("10.0.0.1", headers, PROXY)[0] == "203.0.113.9"


@pytest.mark.parametrize("peer", ["127.0.0.1", "203.0.113.50", "::1", None])
def test_no_one_else_can_name_an_address(peer: str | None) -> None:
    spoof = {"x-forwarded-for": "198.51.100.7", "forwarded": "for=198.51.100.7;proto=https"}
    assert client_of(peer, spoof, PROXY) == (None, None)


def test_nothing_is_trusted_unless_configured() -> None:
    nobody = TrustedProxies.parse([])
    assert not nobody
    assert client_of("127.0.0.1", {"x-forwarded-for": "198.51.100.7"}, nobody) == (None, None)


def test_a_client_cannot_hide_behind_an_address_it_prepends() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the real address.
    headers = {"x-forwarded-for": "1.1.1.1, 203.0.113.9"}
    assert client_of("10.0.0.1", headers, PROXY)[0] == "203.0.113.9"


def test_the_scheme_comes_with_the_clients_hop() -> None:
    assert client_of("10.0.0.1", {"forwarded": "for=203.0.113.9;proto=https"}, PROXY) == (
        "203.0.113.9",
        "https",
    )
    headers = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    assert client_of("10.0.0.1", headers, PROXY) == ("203.0.113.9", "https")
    assert client_of("10.0.0.1", {"x-forwarded-proto": "gopher"}, PROXY) == (None, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ('"192.0.2.1:80"', "192.0.2.1"),
        ("unknown", None),
        ("_hidden", None),
    ],
)
def test_forwarded_addresses_are_read_with_ports_and_brackets(
    raw: str, expected: str | None
) -> None:
    assert parse_address(raw) == expected


def test_ipv6_clients_are_counted_per_64_and_ipv4_per_address() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
