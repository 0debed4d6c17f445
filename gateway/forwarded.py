"""Who the client is when the shop's own proxies or server-side front end say so.

uvicorn's proxy handling is off in every process; the gateway reads the client's address and
scheme here instead, the same way from `Forwarded` (RFC 7239) and from `X-Forwarded-For` /
`X-Forwarded-Proto`, and only from a direct peer listed in `FORWARDED_ALLOW_IPS`. Hops are read
right to left, skipping trusted proxies: the first address that is not one of them is the
client. When both headers are present, `Forwarded` wins.

A server-side front end (BFF, SSR) that sends every shopper's request from its own address
authenticates with a credential of its own (`X-Store-Frontend-Token`, one of
`GATEWAY_FRONTEND_TOKENS`) and passes the shopper's address in `X-Store-Shopper-Address`.
Without a valid credential that header is ignored, so nobody else can pick their address.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

log = structlog.get_logger(__name__)

FRONTEND_TOKEN_HEADER = "x-store-frontend-token"
SHOPPER_ADDRESS_HEADER = "x-store-shopper-address"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(value: str) -> str | None:
    """The IP address in a forwarded hop (`1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:443`,
    `2001:db8::1`); None when it is not one (`unknown`, an obfuscated `_name`)."""
    text = value.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustedProxies:
    """The addresses whose forwarding headers are believed (`FORWARDED_ALLOW_IPS`)."""

    networks: tuple[Network, ...] = ()
    everyone: bool = False

    @classmethod
    def parse(cls, values: Iterable[str]) -> TrustedProxies:
        networks: list[Network] = []
        everyone = False
        for value in values:
            if value.strip() == "*":
                everyone = True
            elif value.strip():
                networks.append(ipaddress.ip_network(value.strip(), strict=False))
        return cls(tuple(networks), everyone)

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def trusts(self, address: str | None) -> bool:
        if address is None:
            return False
        if self.everyone:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def forwarded_hops(headers: dict[str, str]) -> list[tuple[str | None, str | None]]:
    """(address, proto) per hop, the client first, from `Forwarded` or else `X-Forwarded-*`."""
    if "forwarded" in headers:
        hops: list[tuple[str | None, str | None]] = []
        for element in headers["forwarded"].split(","):
            pairs = {}
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                pairs[name.strip().lower()] = value.strip().strip('"')
            address = parse_address(pairs["for"]) if "for" in pairs else None
            hops.append((address, pairs.get("proto")))
        return hops
    protos = [part.strip() for part in headers.get("x-forwarded-proto", "").split(",")]
    if "x-forwarded-for" not in headers:
        return [(None, protos[-1])] if protos[-1] else []
    addresses = [parse_address(part) for part in headers["x-forwarded-for"].split(",")]
    if len(protos) != len(addresses):
        protos = [protos[-1]] * len(addresses)
    return list(zip(addresses, protos, strict=True))


def client_of(
    peer: str | None, headers: dict[str, str], proxies: TrustedProxies
) -> tuple[str | None, str | None]:
    """The client's address and scheme, if a trusted peer forwarded them; else (None, None)."""
    if not proxies.trusts(peer):
        return None, None
    address, proto = None, None
    for hop_address, hop_proto in reversed(forwarded_hops(headers)):
        address, proto = hop_address, hop_proto
        if hop_address is None or not proxies.trusts(hop_address):
            break
    return address, proto if proto in ("http", "https") else None


class ForwardedMiddleware:
    """Sets the scope's client address and scheme from trusted proxies and front ends."""

    def __init__(
        self, app: ASGIApp, *, proxies: TrustedProxies, frontend_tokens: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.proxies = proxies
        self.frontend_tokens = tuple(token.encode() for token in frontend_tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (self.proxies or self.frontend_tokens):
            scope = self._resolved(scope)
        await self.app(scope, receive, send)

    def _resolved(self, scope: Scope) -> Scope:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        peer = scope["client"][0] if scope.get("client") else None
        changes: dict[str, Any] = {}
        address, proto = client_of(peer, headers, self.proxies)
        if address is not None:
            changes["client"] = (address, 0)
        if proto is not None:
            changes["scheme"] = proto
        shopper = self._shopper_address(headers)
        if shopper is not None:
            changes["client"] = (shopper, 0)
        return {**scope, **changes} if changes else scope

    def _shopper_address(self, headers: dict[str, str]) -> str | None:
        offered = headers.get(FRONTEND_TOKEN_HEADER)
        if offered is None or SHOPPER_ADDRESS_HEADER not in headers:
            return None
        if not any(hmac.compare_digest(offered.encode(), token) for token in self.frontend_tokens):
            log.warning("gateway.frontend_token_refused")
            return None
        return parse_address(headers[SHOPPER_ADDRESS_HEADER])


def address_key(address: str) -> str:
    """The rate-limit key of a client address: an IPv4 address, or an IPv6 address's /64 (one
    subscriber's network)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
