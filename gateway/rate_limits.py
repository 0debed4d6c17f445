"""Rate limits that guard what costs money or enables abuse, and spare shoppers.

Three kinds of request are limited (docs/security.md has the table and the defaults):
- payment sessions (checkout, pay, the dev provider's pay) and billing creation, per client
  address and per identity: the card-testing defence; a refusal is counted in
  `store_gateway_rate_limited_total` and logged as `gateway.card_testing_suspected`;
- a new cart (a cart write by a caller with no identity yet), per client address;
- cart writes of a shopper with an identity, per identity, far above human use.

The client address is the one `gateway/forwarded.py` resolved (trusted proxies, a front end's
credential); an IPv6 client is counted per /64. Counters live in Redis in the distributed mode
(shared by every gateway process) and in memory in the embedded mode.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import structlog
from fastapi import Request
from prometheus_client import Counter

from gateway.forwarded import address_key
from gateway.identity import AnonymousCookie, MergedAnonymousIds, TokenVerifier
from gateway.settings import GatewaySettings
from libs.runtime.problems import ProblemError

log = structlog.get_logger(__name__)

Group = Literal["sessions", "billing", "cart_writes"]

# Route path templates, as mounted, and the group each one counts in.
LIMITED_ROUTES: dict[tuple[str, str], Group] = {
    ("POST", "/api/store/checkout"): "sessions",
    ("POST", "/api/store/orders/{order_id}/pay"): "sessions",
    ("POST", "/api/payments/dev-checkout/{attempt_id}/pay"): "sessions",
    ("POST", "/api/payments/dev-checkout/{attempt_id}/pay-later"): "sessions",
    ("POST", "/api/payments/billing"): "billing",
    ("POST", "/api/store/cart/lines"): "cart_writes",
    ("PATCH", "/api/store/cart/lines/{line_id}"): "cart_writes",
    ("DELETE", "/api/store/cart/lines/{line_id}"): "cart_writes",
}


class RateLimited(ProblemError):
    status, code, title = 429, "rate_limited", "Too many requests"


@dataclass(frozen=True)
class Rule:
    """One counter: what it guards, what it is kept per, and its `limits` item."""

    name: str
    per: Literal["address", "identity"]
    item: Any


@cache
def _refusals() -> Counter:
    return Counter(
        "store_gateway_rate_limited_total",
        "Requests refused by a gateway rate limit.",
        ["rule", "per"],
    )


def _rules(settings: GatewaySettings) -> dict[str, Rule]:
    from limits import parse

    def rule(name: str, per: Literal["address", "identity"], notation: str) -> Rule:
        return Rule(name=name, per=per, item=parse(notation))

    return {
        "sessions.address": rule("sessions", "address", settings.rate_limit_sessions_per_address),
        "sessions.identity": rule(
            "sessions", "identity", settings.rate_limit_sessions_per_identity
        ),
        "billing.address": rule("billing", "address", settings.rate_limit_billing_per_address),
        "billing.identity": rule("billing", "identity", settings.rate_limit_billing_per_identity),
        "new_carts.address": rule(
            "new_carts", "address", settings.rate_limit_new_carts_per_address
        ),
        "cart_writes.identity": rule(
            "cart_writes", "identity", settings.rate_limit_cart_writes_per_identity
        ),
    }


@dataclass
class RateLimits:
    """The counters of `LIMITED_ROUTES` (module docstring)."""

    rules: dict[str, Rule]
    limiter: Any
    verifier: TokenVerifier
    cookie: AnonymousCookie
    merged_ids: MergedAnonymousIds

    @classmethod
    def from_settings(
        cls,
        settings: GatewaySettings,
        *,
        verifier: TokenVerifier,
        cookie: AnonymousCookie,
        merged_ids: MergedAnonymousIds,
    ) -> RateLimits:
        from limits.aio.strategies import FixedWindowRateLimiter
        from limits.storage import storage_from_string

        from libs.runtime.redis import resilient_options

        runtime = settings.runtime
        if runtime.embedded or runtime.redis_url.startswith("memory://"):
            storage = storage_from_string("async+memory://")
        else:
            storage = storage_from_string(
                "async+" + runtime.redis_url,
                implementation="redispy",
                key_prefix=f"{runtime.queue_prefix}.ratelimit",
                # The same outage-surviving client as every other Redis user (a cut
                # connection is retried, not answered with 503 once Redis is back).
                **resilient_options(),
            )
        return cls(
            rules=_rules(settings),
            limiter=FixedWindowRateLimiter(storage),
            verifier=verifier,
            cookie=cookie,
            merged_ids=merged_ids,
        )

    async def check(self, request: Request) -> None:
        """Count this request if its route is limited; 429 with Retry-After over a limit."""
        template = getattr(request.scope.get("route"), "path", None)
        group = LIMITED_ROUTES.get((request.method, str(template)))
        if group is None:
            return
        counters = self._counters(
            group,
            address=address_key(request.client.host) if request.client else "-",
            identity=await self._identity(request),
        )
        # Every counter in one wait: each is a Redis round trip of its own.
        hits = await asyncio.gather(
            *(self.limiter.hit(r.item, r.name, r.per, k) for r, k in counters)
        )
        refused = [counter for counter, allowed in zip(counters, hits, strict=True) if not allowed]
        if refused:
            await self._refuse(refused, str(template))

    def _counters(
        self, group: Group, *, address: str, identity: str | None
    ) -> list[tuple[Rule, str]]:
        if group == "cart_writes":
            # A caller with no identity yet starts a new cart with every write.
            if identity is None:
                return [(self.rules["new_carts.address"], address)]
            return [(self.rules["cart_writes.identity"], identity)]
        counters = [(self.rules[f"{group}.address"], address)]
        if identity is not None:
            counters.append((self.rules[f"{group}.identity"], identity))
        return counters

    async def _refuse(self, refused: list[tuple[Rule, str]], route: str) -> None:
        """429, waiting for the counter that frees up last; every refusing counter is logged
        and counted, so an operator sees an identity's card testing behind its address's."""
        resets = []
        for rule, key in refused:
            stats = await self.limiter.get_window_stats(rule.item, rule.name, rule.per, key)
            resets.append(stats.reset_time)
            _refusals().labels(rule=rule.name, per=rule.per).inc()
            if rule.name in ("sessions", "billing"):
                # One address or identity opening payment sessions fast is how cards are tested.
                log.warning("gateway.card_testing_suspected", rule=rule.name, per=rule.per, key=key)
            else:
                log.warning("gateway.rate_limited", rule=rule.name, per=rule.per, route=route)
        per = " and ".join(rule.per for rule, _ in refused)
        problem = RateLimited(f"Too many requests from this {per}; try again later.")
        problem.headers = {"Retry-After": str(max(1, int(max(resets) - time.time())))}
        raise problem

    async def _identity(self, request: Request) -> str | None:
        """The user of a valid bearer token, else the anonymous id of a valid, live cookie."""
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                return "user:" + (await self.verifier.verify(token.strip()))[0]
            except ProblemError:
                return None
        anonymous_id = self.cookie.of_request(request)
        if not anonymous_id or await self.merged_ids.is_merged_for_request(request, anonymous_id):
            # A cookie merged at login is dead: its holder is nobody, who starts a new cart.
            return None
        return f"anonymous:{anonymous_id}"


async def rate_limit(request: Request) -> None:
    """Router-level dependency of the gateway: the rate limits of `LIMITED_ROUTES`."""
    await request.app.state.gateway.rate_limits.check(request)
