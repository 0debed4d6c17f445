"""The gateway's public origin: the one address shoppers reach it at (`GATEWAY_PUBLIC_URL`).

Links and redirects are built on it, never on the request's `Host`, and a request for any
other host is refused before it reaches a route. Host names are compared in one form: lower
case, without a trailing dot, IDNA-encoded (`xn--…`) when they are not ASCII, so a homograph
(a Cyrillic letter for a Latin one) is another host, never the same one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import idna
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.runtime.problems import ProblemError, send_problem

# What probes and scrapers ask for by the pod's or container's own address: answered for any
# host (they serve no link and carry no shopper).
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# An ASCII label (letters, digits, hyphens, and the underscores of some internal names; no
# leading or trailing hyphen).
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def normalized_host(host: str) -> str | None:
    """`host` as compared everywhere (lower case, no trailing dot, A-labels for non-ASCII,
    IPv6 without brackets), or None when it is no valid host name or address."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    host = host[:-1] if host.endswith(".") else host
    if not host:
        return None
    if not host.isascii():
        try:
            # UTS 46 as browsers apply it: the name they would actually look up.
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    host = host.lower()
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return host


def host_of_header(value: str) -> str | None:
    """The host part of a `Host` header (`name`, `name:port`, `[v6]:port`), normalized."""
    if value.startswith("["):
        end = value.find("]")
        return normalized_host(value[: end + 1]) if end > 0 else None
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return normalized_host(name)


def valid_port(parts: SplitResult) -> bool:
    """The URL's port is absent or a number from 1 to 65535 (`:0`, `:abc`, `:99999` are not)."""
    try:
        port = parts.port
    except ValueError:
        return False
    return port is None or 0 < port <= 65535


@dataclass(frozen=True)
class PublicOrigin:
    """`scheme://host[:port]` of the gateway, parsed once from `GATEWAY_PUBLIC_URL`."""

    scheme: str
    host: str
    netloc: str

    @classmethod
    def parse(cls, url: str) -> PublicOrigin:
        """The origin of `url`, or ValueError saying what a public URL must be."""
        problem = (
            f"GATEWAY_PUBLIC_URL must be the address shoppers reach the gateway at: "
            f"http(s)://host[:port] with no path, user or query (e.g. https://shop.example), "
            f"not {url!r}"
        )
        try:
            parts = urlsplit(url.strip())
            hostname = parts.hostname
        except ValueError:
            raise ValueError(problem) from None
        host = normalized_host(hostname or "")
        if (
            parts.scheme not in ("http", "https")
            or host is None
            or parts.username is not None
            or parts.password is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or not valid_port(parts)
        ):
            raise ValueError(problem)
        shown = f"[{host}]" if ":" in host else host
        port = parts.port
        default = {"http": 80, "https": 443}[parts.scheme]
        netloc = shown if port in (None, default) else f"{shown}:{port}"
        return cls(scheme=parts.scheme, host=host, netloc=netloc)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class PublicOriginMiddleware:
    """Refuses a request for a host the gateway does not serve (400 `invalid_host`), and makes
    every other request look addressed to the public origin (scheme and `Host`), so whatever
    the app builds from the request (a slash redirect's `Location`, a link) is on the origin.
    Probe paths pass untouched, for any host."""

    def __init__(self, app: ASGIApp, *, origin: PublicOrigin, hosts: frozenset[str]) -> None:
        self.app = app
        self.origin = origin
        self.hosts = hosts
        self.host_header = origin.netloc.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        values = [value for name, value in headers if name == b"host"]
        host = host_of_header(values[0].decode("latin-1")) if len(values) == 1 else None
        if host is None or host not in self.hosts:
            detail = f"This store answers at {self.origin.url}."
            await send_problem(scope, send, InvalidHost(detail))
            return
        rest = [(name, value) for name, value in headers if name != b"host"]
        scope = {
            **scope,
            "scheme": self.origin.scheme,
            "headers": [(b"host", self.host_header), *rest],
        }
        await self.app(scope, receive, send)


class InvalidHost(ProblemError):
    code, title = "invalid_host", "Invalid host"
