"""A local, stateful fake of the parts of the Stripe HTTP API that Store uses.

The real ``stripe`` SDK talks to it over HTTP (point ``base_addresses["api"]`` at it), so the
payment provider is exercised through the same encoding, error mapping and object
construction as in production, without network.

What it simulates: customers, products, prices, checkout sessions (payment and subscription
mode), subscriptions, invoices, payment intents and events; API-key auth; idempotency keys;
webhook delivery signed exactly like Stripe. Test-only actions under ``/_test/`` drive what
a shopper or Stripe's billing engine would do (pay, fail, renew, expire) and report the
webhook deliveries they caused. ``FakeStripe.fail_next`` makes one request fail once, as
Stripe's sometimes do: rate limited before anything was done, or done with its answer lost.

Parameter policy: a parameter the installed SDK does not know is rejected as Stripe would
(``parameter_unknown``); a known parameter the fake does not simulate is accepted, recorded in
the request log, and has no effect.

Known simplifications: no taxes, discounts, trials or prorations; failed webhooks are not
retried on their own (use the resend action); API-triggered events are delivered in the
background, test actions deliver theirs before answering.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import copy
import functools
import json
import random
import re
import secrets
import string
import sys
import time
import types
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl

import httpx
import pycountry
import stripe
import stripe.params as sp
import stripe.params.billing_portal as spb
import stripe.params.checkout as spc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JSON = dict[str, Any]

_ID_ALPHABET = string.ascii_letters + string.digits
_DAY = 86_400
_INTERVALS = ("day", "week", "month", "year")
_MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
_MAX_AMOUNT = 99_999_999
# A subscription in one of these states has ended for good.
SUBSCRIPTION_ENDED = frozenset({"canceled", "incomplete_expired"})
# Options the SDK accepts in the same dict as params (legacy resource API) but never sends.
_REQUEST_OPTION_KEYS = frozenset(
    {
        "api_key",
        "content_type",
        "headers",
        "idempotency_key",
        "max_network_retries",
        "stripe_account",
        "stripe_context",
        "stripe_version",
    }
)


# ---------------------------------------------------------------------------------------------
# Errors


class StripeApiError(Exception):
    """An error answered in Stripe's JSON shape: ``{"error": {"type", "message", ...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def body(self) -> JSON:
        error: JSON = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing_param(param: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


# The formats Stripe checks for the tax id types Store sends (a subset of Stripe's rules).
TAX_ID_FORMATS: dict[str, re.Pattern[str]] = {
    "eu_vat": re.compile(
        r"^(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)[0-9A-Z]{2,13}$"
    ),
    "gb_vat": re.compile(r"^GB([0-9]{9}|[0-9]{12})$"),
}


def invalid_param(param: str, message: str) -> StripeApiError:
    return StripeApiError(400, message, code="parameter_invalid", param=param)


def no_such(kind: str, object_id: str, *, param: str | None = None) -> StripeApiError:
    # Stripe answers 404 for an unknown id in the path, 400 for one referenced by a parameter.
    status = 400 if param else 404
    return StripeApiError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param or "id"
    )


def wrong_state(message: str) -> StripeApiError:
    return StripeApiError(400, message, code="invalid_state")


# ---------------------------------------------------------------------------------------------
# Form decoding: Stripe's bracketed keys into nested dicts and lists


def parse_stripe_params(pairs: Iterable[tuple[str, str]]) -> JSON:
    """Decode ``a[b][0][c]=v`` pairs (and ``expand[]=x``) into nested dicts and lists."""
    tree: JSON = {}
    for key, value in pairs:
        _insert(tree, _split_key(key), value)
    return cast(JSON, _listify(tree, parent_key=None))


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    if not head or not rest.endswith("]"):
        raise invalid_param(key, f"Invalid parameter name: {key}")
    parts = [head]
    for chunk in rest[:-1].split("]["):
        if "[" in chunk or "]" in chunk:
            raise invalid_param(key, f"Invalid parameter name: {key}")
        parts.append(chunk)
    return parts


def _insert(tree: JSON, parts: list[str], value: str) -> None:
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(_slot(node, part), {})
        if not isinstance(child, dict):
            raise invalid_param(parts[0], f"Invalid hash for parameter {parts[0]}")
        node = child
    last = _slot(node, parts[-1])
    if isinstance(node.get(last), dict):
        raise invalid_param(parts[0], f"Invalid hash for parameter {parts[0]}")
    node[last] = value


def _slot(node: JSON, part: str) -> str:
    # "key[]" appends: give it the next free index so lists keep their order.
    return str(len(node)) if part == "" else part


def _listify(value: Any, *, parent_key: str | None) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v, parent_key=k) for k, v in value.items()}
    # Metadata keys are free-form ("metadata[0]=x" is a key, not an index).
    if parent_key != "metadata" and converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


# ---------------------------------------------------------------------------------------------
# Parameter helpers


def known_params(params_type: type) -> frozenset[str]:
    """Top-level parameter names the installed SDK declares for an endpoint."""
    return frozenset(_fields(params_type))


def _is_typed_dict(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, dict) and hasattr(value, "__total__")


@functools.cache
def _fields(params_type: type) -> dict[str, Any]:
    """A params TypedDict's fields and their types, read from the SDK's own annotations.

    Annotations are forward references in the SDK's modules; one naming a type the module only
    imports for type checking resolves to Any (it is never a nested parameter object).
    """
    namespace = vars(sys.modules[params_type.__module__])
    return {
        name: _resolve(annotation, namespace)
        for name, annotation in params_type.__annotations__.items()
        if name not in _REQUEST_OPTION_KEYS
    }


def _resolve(annotation: Any, namespace: Mapping[str, Any]) -> Any:
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation)
    if isinstance(annotation, typing.ForwardRef):
        try:
            annotation = eval(annotation.__forward_arg__, dict(namespace))
        except NameError:
            return Any
    origin = typing.get_origin(annotation)
    if origin in (typing.NotRequired, typing.Required):
        return _resolve(typing.get_args(annotation)[0], namespace)
    return annotation


def check_params(value: Any, params_type: type, param: str = "") -> None:
    """Refuse what the SDK's params types do not allow, at any depth, naming the parameter as
    Stripe does (``payment_intent_data[statement_descriptor_sufix]``): unknown keys, a hash
    where a value belongs, a value where a hash or a list belongs."""
    error = _shape_error(value, params_type, param, {})
    if error is not None:
        raise error


def _shape_error(
    value: Any, annotation: Any, param: str, namespace: Mapping[str, Any]
) -> StripeApiError | None:
    annotation = _resolve(annotation, namespace)
    if annotation is Any:
        return None
    if _is_typed_dict(annotation):
        return _object_error(value, annotation, param)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        errors = [_shape_error(value, member, param, namespace) for member in args]
        if any(error is None for error in errors):
            return None
        # The most specific complaint: the one from the member that looked like the value.
        return next((e for e in errors if e is not None and e.param != param), errors[0])
    if origin is list:
        if not isinstance(value, list):
            return invalid_param(param, f"Invalid array for {param}.")
        for index, item in enumerate(value):
            error = _shape_error(item, args[0], f"{param}[{index}]", namespace)
            if error is not None:
                return error
        return None
    if origin is dict or (isinstance(origin, type) and issubclass(origin, dict)):
        return (
            None if isinstance(value, dict) else invalid_param(param, f"Invalid hash for {param}.")
        )
    if isinstance(value, (dict, list)):
        return invalid_param(
            param, f"Invalid value for {param}: a {_name(annotation)} is expected."
        )
    return None


def _object_error(value: Any, params_type: type, param: str) -> StripeApiError | None:
    if not isinstance(value, dict):
        return invalid_param(param, f"Invalid object for {param}: a hash is expected.")
    fields = _fields(params_type)
    namespace = vars(sys.modules[params_type.__module__])
    for name, item in value.items():
        child = f"{param}[{name}]" if param else name
        if name not in fields:
            return StripeApiError(
                400, f"Received unknown parameter: {child}", code="parameter_unknown", param=child
            )
        error = _shape_error(item, fields[name], child, namespace)
        if error is not None:
            return error
    return None


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _child(prefix: str, name: str) -> str:
    """The full name of a nested parameter: ``a[b][`` + ``c`` is ``a[b][c]``."""
    return f"{prefix}{name}]" if prefix.endswith("[") else prefix + name


def _require(params: Mapping[str, Any], name: str, *, prefix: str = "") -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise missing_param(_child(prefix, name))
    return value


def _int(value: Any, param: str, *, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid_param(param, f"Invalid integer: {value}") from None
    if number < minimum:
        raise invalid_param(param, f"{param} must be at least {minimum}.")
    return number


def _bool(value: Any, param: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid_param(param, f"Invalid boolean: {value}")


def _dict(value: Any, param: str) -> JSON:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise invalid_param(param, f"Invalid object for {param}")
    return value


def _text(value: Any) -> str | None:
    # Stripe treats an empty string as "unset".
    return None if value in (None, "") else str(value)


def _merge_metadata(current: Mapping[str, str], update: Any) -> dict[str, str]:
    """Stripe's rules: ``metadata=""`` clears all, ``metadata[k]=""`` removes one key."""
    if update is None:
        return dict(current)
    if update == "":
        return {}
    merged = dict(current)
    for key, value in _dict(update, "metadata").items():
        if not isinstance(value, str):
            raise invalid_param(f"metadata[{key}]", "Metadata values must be strings.")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _address(value: Any, param: str) -> JSON | None:
    if value in (None, ""):
        return None
    given = _dict(value, param)
    keys = ("city", "country", "line1", "line2", "postal_code", "state")
    return {key: _text(given.get(key)) for key in keys}


def _url(value: Any, param: str) -> str | None:
    url = _text(value)
    if url is not None and not url.startswith(("http://", "https://")):
        raise invalid_param(param, "Not a valid URL")
    return url


def add_interval(timestamp: int, interval: str, count: int) -> int:
    """Advance a billing period the way Stripe does: calendar months, clamped to month end."""
    if interval == "day":
        return timestamp + count * _DAY
    if interval == "week":
        return timestamp + count * 7 * _DAY
    moment = datetime.fromtimestamp(timestamp, UTC)
    months = count * (12 if interval == "year" else 1)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _list_object(data: list[JSON], url: str) -> JSON:
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "total_count": len(data),
        "url": url,
    }


# ---------------------------------------------------------------------------------------------
# Records kept for tests


@dataclass(frozen=True)
class RecordedRequest:
    """One request received under /v1, as the fake understood it."""

    method: str
    path: str
    params: JSON
    idempotency_key: str | None
    stripe_version: str | None
    status: int
    replayed: bool


@dataclass(frozen=True)
class Delivery:
    """One attempt to POST an event to the webhook URL."""

    event_id: str
    event_type: str
    url: str | None
    status_code: int | None
    error: str | None

    def to_json(self) -> JSON:
        return {
            "id": self.event_id,
            "type": self.event_type,
            "status_code": self.status_code,
            "error": self.error,
        }


@dataclass(frozen=True)
class ActionReport:
    """What a /_test/ action did: the object it changed and the events it delivered."""

    object: JSON
    deliveries: list[Delivery]

    @property
    def event_ids(self) -> list[str]:
        return [delivery.event_id for delivery in self.deliveries]

    def event_id(self, event_type: str) -> str:
        """The one delivered event of this type (deliveries come in no particular order)."""
        [found] = [d.event_id for d in self.deliveries if d.event_type == event_type]
        return found

    def to_json(self) -> JSON:
        return {"object": self.object, "events": [d.to_json() for d in self.deliveries]}


@dataclass(frozen=True)
class ApiCall:
    """A /v1 request reduced to what the fake needs to answer it."""

    method: str
    path: str
    pairs: list[tuple[str, str]]
    authorization: str | None
    idempotency_key: str | None
    stripe_version: str | None
    base_url: str
    request_id: str = field(default_factory=lambda: new_id("req"))


@dataclass(frozen=True)
class ApiResult:
    status: int
    body: JSON
    replayed: bool = False
    transient: bool = False  # an injected failure the SDK may retry


@dataclass(frozen=True)
class InjectedFailure:
    """One request that fails once, as Stripe's requests sometimes do (``fail_next``)."""

    method: str
    path: str
    status: int
    after_handling: bool

    def matches(self, call: ApiCall) -> bool:
        return call.method == self.method and call.path == self.path

    def result(self) -> ApiResult:
        if self.status == 429:
            error = StripeApiError(
                429,
                "Request rate limit exceeded. You can learn more about rate limits here "
                "https://docs.stripe.com/rate-limits.",
                code="rate_limit",
            )
        else:
            error = StripeApiError(self.status, "An unknown error occurred", type_="api_error")
        return ApiResult(error.status, error.body(), transient=True)


@dataclass
class Harshness:
    """Stripe on a bad day, switchable per test: a share of API requests fail transiently
    (429 or 5xx; before the endpoint ran, or after it ran and saved its answer under the
    idempotency key, as when the answer is lost on its way back), and webhooks arrive
    concurrently and some of them twice. Deterministic per seed."""

    failure_rate: float = 0.0
    duplicate_rate: float = 0.0
    concurrent: bool = False
    seed: int = 0
    rng: random.Random = field(init=False)
    injected: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def failure(self, call: ApiCall) -> InjectedFailure | None:
        if self.failure_rate <= 0 or self.rng.random() >= self.failure_rate:
            return None
        self.injected += 1
        status = self.rng.choice((429, 500, 503))
        return InjectedFailure(call.method, call.path, status, self.rng.random() < 0.5)

    def twice(self) -> bool:
        return self.duplicate_rate > 0 and self.rng.random() < self.duplicate_rate


def _token(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """A random Stripe-looking id: random so that ids never collide across fake instances."""
    return f"{prefix}_{_token(length)}"


# ---------------------------------------------------------------------------------------------
# Idempotency


IDEMPOTENCY_KEY_TTL_S = _DAY  # Stripe prunes keys once they are at least 24 hours old


class IdempotencyCache:
    """Replays the first answer given to a key for 24 hours; refuses the key for a different
    request meanwhile. After that the key is new again, as at Stripe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._answers: dict[tuple[str, str], tuple[float, str, ApiResult]] = {}

    @staticmethod
    def _fingerprint(call: ApiCall, params: JSON) -> str:
        return json.dumps([call.method, call.path, params], sort_keys=True)

    def lookup(self, api_key: str, call: ApiCall, params: JSON) -> ApiResult | None:
        if call.idempotency_key is None:
            return None
        stored = self._answers.get((api_key, call.idempotency_key))
        if stored is None:
            return None
        saved_at, fingerprint, result = stored
        if self._clock() - saved_at >= IDEMPOTENCY_KEY_TTL_S:
            del self._answers[(api_key, call.idempotency_key)]
            return None
        if fingerprint != self._fingerprint(call, params):
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{call.idempotency_key}' if "
                "you meant to execute a different request.",
                type_="idempotency_error",
            )
        return ApiResult(result.status, result.body, replayed=True)

    def remember(self, api_key: str, call: ApiCall, params: JSON, result: ApiResult) -> None:
        # Like Stripe, a request rejected by validation (400) does not consume its key.
        if call.idempotency_key is None or result.status == 400:
            return
        self._answers[(api_key, call.idempotency_key)] = (
            self._clock(),
            self._fingerprint(call, params),
            result,
        )


# ---------------------------------------------------------------------------------------------
# Webhook delivery


class WebhookDispatcher:
    """POSTs events to the configured endpoint, signed with ``Stripe-Signature``."""

    def __init__(
        self,
        *,
        url: str | None,
        secret: str,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.secret = secret
        self._transport = transport
        self._timeout = timeout
        self.deliveries: list[Delivery] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.harshness: Harshness | None = None

    async def deliver_all(self, events: list[JSON]) -> list[Delivery]:
        """Deliver in order, one at a time, as Stripe does for a single endpoint; when harsh,
        all at once, and some twice."""
        harsh = self.harshness
        if harsh is None:
            return [await self._deliver(event) for event in events]
        sent = [e for event in events for e in ([event, event] if harsh.twice() else [event])]
        if not harsh.concurrent:
            return [await self._deliver(event) for event in sent]
        return list(await asyncio.gather(*(self._deliver(event) for event in sent)))

    def deliver_later(self, events: list[JSON]) -> None:
        """Deliver after the API response, like Stripe's asynchronous webhooks."""
        if not events:
            return
        task = asyncio.get_running_loop().create_task(self._deliver_quietly(events))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait until every background delivery has been attempted."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*list(self._pending), return_exceptions=True)
        # A transport passed in belongs to the caller; closing the client would close it.
        if self._http is not None and self._transport is None:
            await self._http.aclose()
        self._http = None

    async def _deliver_quietly(self, events: list[JSON]) -> None:
        await self.deliver_all(events)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._timeout,
                # A proxy configured in the environment must not swallow loopback calls.
                trust_env=False,
                # Receivers are local test servers; verifying TLS would only reject self-signed
                # certificates and cost ~50 ms per client to load a CA bundle.
                verify=False,
            )
        return self._http

    async def _deliver(self, event: JSON) -> Delivery:
        if self.url is None:
            delivery = Delivery(event["id"], event["type"], None, None, "no webhook url configured")
        else:
            delivery = await self._post(self._client(), self.url, event)
        self.deliveries.append(delivery)
        return delivery

    async def _post(self, client: httpx.AsyncClient, url: str, event: JSON) -> Delivery:
        # Stripe sends pretty-printed JSON; the signature covers these exact bytes.
        payload = json.dumps(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
                payload, self.secret, int(time.time())
            ),
        }
        try:
            response = await client.post(url, content=payload.encode("utf-8"), headers=headers)
        except httpx.HTTPError as exc:
            return Delivery(event["id"], event["type"], url, None, f"{type(exc).__name__}: {exc}")
        return Delivery(event["id"], event["type"], url, response.status_code, None)


# ---------------------------------------------------------------------------------------------
# The simulated Stripe account


@dataclass
class _SessionLine:
    price: JSON
    quantity: int
    id: str = field(default_factory=lambda: new_id("li"))

    @property
    def amount(self) -> int:
        return int(self.price["unit_amount"]) * self.quantity


@dataclass
class _SessionRecord:
    """What Stripe keeps about a session but does not show on the object."""

    lines: list[_SessionLine]
    payment_intent_data: JSON
    subscription_data: JSON


class FakeStripe:
    """The state and behaviour of one fake Stripe account; one per app instance."""

    def __init__(
        self,
        *,
        webhook_url: str | None,
        webhook_secret: str,
        api_key_prefix: str,
        api_version: str,
        clock: Callable[[], float],
        webhook_transport: httpx.AsyncBaseTransport | None,
        shuffle_seed: int | None = 0,
    ) -> None:
        self.api_key_prefix = api_key_prefix
        self.api_version = api_version
        self._clock = clock
        self.webhooks = WebhookDispatcher(
            url=webhook_url, secret=webhook_secret, transport=webhook_transport
        )
        self.objects: dict[str, JSON] = {}
        self.events: list[JSON] = []
        self.requests: list[RecordedRequest] = []
        self._sessions: dict[str, _SessionRecord] = {}
        self._idempotency = IdempotencyCache(clock)
        self._outbox: list[JSON] = []
        self._invoice_number = 0
        self._shuffle = random.Random(shuffle_seed) if shuffle_seed is not None else None
        self._failures: list[InjectedFailure] = []
        self.harshness: Harshness | None = None
        # How a new refund starts: Stripe settles most card refunds at once, but a refund may
        # stay `pending` (or `requires_action`) for days and then succeed or fail.
        self.refund_status = "succeeded"
        # The event types the webhook endpoint is subscribed to (None: all), as configured in
        # the Dashboard; the others are recorded and never delivered.
        self.enabled_events: set[str] | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    def get(self, kind: str, object_id: str, *, param: str | None = None) -> JSON:
        """The stored object, or Stripe's resource_missing error."""
        found = self.objects.get(object_id)
        if found is None or found.get("object") != kind or found.get("deleted"):
            raise no_such(kind, object_id, param=param)
        return found

    def _store(self, obj: JSON) -> JSON:
        self.objects[obj["id"]] = obj
        return obj

    def _base(self, prefix: str, kind: str, **fields: Any) -> JSON:
        """The fields every Stripe object starts with, then its own."""
        obj: JSON = {"id": new_id(prefix), "object": kind, "created": self.now(), "livemode": False}
        obj.update(fields)
        return obj

    def call(self, call: ApiCall, handler: ApiHandler, params_type: type | None) -> ApiResult:
        """Authenticate, replay or execute, remember, and log one /v1 request.

        ``params_type`` is the SDK's params type of the endpoint; None skips that check.
        """
        params: JSON = {}
        api_key = ""
        failure = self._take_failure(call)
        if failure is None and self.harshness is not None:
            failure = self.harshness.failure(call)
        try:
            api_key = self._authenticate(call.authorization)
            params = parse_stripe_params(call.pairs)
            result: ApiResult | None = None
            if failure is not None and not failure.after_handling:
                # Refused before the endpoint ran: nothing done, nothing saved under the key.
                result = failure.result()
            else:
                result = self._idempotency.lookup(api_key, call, params)
            if result is None:
                if params_type is not None:
                    check_params(params, params_type)
                # A snapshot: the stored object keeps changing, a replay must not.
                body = copy.deepcopy(handler(self, params, call))
                self.expand(body, params.get("expand"))
                result = ApiResult(200, body)
                self._idempotency.remember(api_key, call, params, result)
        except StripeApiError as exc:
            self._outbox.clear()
            result = ApiResult(exc.status, exc.body())
            if api_key:
                self._idempotency.remember(api_key, call, params, result)
        if failure is not None and failure.after_handling:
            # Done (and saved under its key), but the answer never reaches the caller.
            result = failure.result()
        self.requests.append(
            RecordedRequest(
                call.method,
                call.path,
                params,
                call.idempotency_key,
                call.stripe_version,
                result.status,
                result.replayed,
            )
        )
        return result

    def be_harsh(self, harshness: Harshness | None) -> None:
        """From now on, fail requests and deliver webhooks as `harshness` says (None: kind)."""
        self.harshness = harshness
        self.webhooks.harshness = harshness

    def fail_next(
        self, method: str, path: str, *, status: int = 500, after_handling: bool = False
    ) -> None:
        """The next ``method path`` request fails once with ``status`` (429: rate limited; 5xx:
        Stripe's ``api_error``). Before the endpoint runs, nothing is done and its idempotency
        key stays unused. With ``after_handling`` the request is done and its answer saved
        under the key, but the caller gets the error instead: an answer lost on its way back,
        as after a timeout, which only the key's replay recovers."""
        self._failures.append(InjectedFailure(method.upper(), path, status, after_handling))

    def _take_failure(self, call: ApiCall) -> InjectedFailure | None:
        for index, failure in enumerate(self._failures):
            if failure.matches(call):
                return self._failures.pop(index)
        return None

    def _authenticate(self, authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if not key.startswith(self.api_key_prefix) or len(key) == len(self.api_key_prefix):
            raise StripeApiError(
                401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}", code="api_key_invalid"
            )
        return key

    def expand(self, body: JSON, paths: Any) -> None:
        """Apply ``expand[]`` in place: ids become the objects they name (dotted paths)."""
        for path in (paths if isinstance(paths, list) else [paths]) if paths else []:
            self._expand_path(body, str(path).split("."), str(path))

    def _expand_path(self, node: JSON, parts: list[str], full: str) -> None:
        head, rest = parts[0], parts[1:]
        if head == "data" and node.get("object") == "list":
            for item in node["data"] if rest else []:
                self._expand_path(item, rest, full)
            return
        if head == "line_items" and node.get("object") == "checkout.session":
            node["line_items"] = self.session_line_items(node["id"])
        elif head == "payments" and node.get("object") == "invoice":
            # Includable: an invoice shows its payments only when asked for them.
            node["payments"] = copy.deepcopy(self.list_invoice_payments({"invoice": node["id"]}))
        elif head not in node:
            raise invalid_param("expand", f"This property cannot be expanded ({full}).")
        elif isinstance(node[head], str):
            node[head] = copy.deepcopy(self._any(node[head], full))
        if rest and isinstance(node.get(head), dict):
            self._expand_path(node[head], rest, full)

    def _any(self, object_id: str, path: str) -> JSON:
        found = self.objects.get(object_id)
        if found is None:
            raise invalid_param("expand", f"This property cannot be expanded ({path}).")
        return found

    # -- events -----------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        obj: JSON,
        *,
        previous: JSON | None = None,
        call: ApiCall | None = None,
    ) -> JSON:
        """Record an event holding a snapshot of ``obj`` and queue it for delivery."""
        data: JSON = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = self._base(
            "evt",
            "event",
            api_version=self.api_version,
            data=data,
            pending_webhooks=1 if self.webhooks.url else 0,
            request={
                "id": call.request_id if call else None,
                "idempotency_key": call.idempotency_key if call else None,
            },
            type=event_type,
        )
        self.events.append(self._store(event))
        self._outbox.append(event)
        return event

    def take_outbox(self) -> list[JSON]:
        """The events to deliver, in the order Stripe might send them: it promises none, so
        they are shuffled (deterministically per fake, by its seed)."""
        events, self._outbox = self._outbox, []
        if self.enabled_events is not None:
            events = [e for e in events if e["type"] in self.enabled_events]
        if self._shuffle is not None:
            self._shuffle.shuffle(events)
        return events

    def _emit_payment(self, intent: JSON, *, succeeded: bool) -> None:
        """What Stripe announces about the PaymentIntent and Charge behind a payment."""
        self.emit("payment_intent.created", intent)
        if not succeeded:
            self.emit("payment_intent.processing", intent)
            return
        charge = self._base(
            "ch",
            "charge",
            amount=intent["amount"],
            amount_captured=intent["amount"],
            amount_refunded=0,
            currency=intent["currency"],
            customer=intent.get("customer"),
            paid=True,
            payment_intent=intent["id"],
            status="succeeded",
        )
        intent["latest_charge"] = self._store(charge)["id"]
        self.emit("charge.succeeded", charge)
        self.emit("payment_intent.succeeded", intent)

    async def _report(self, obj: JSON) -> ActionReport:
        deliveries = await self.webhooks.deliver_all(self.take_outbox())
        return ActionReport(copy.deepcopy(obj), deliveries)

    # -- customers --------------------------------------------------------------------------

    def create_customer(self, params: JSON) -> JSON:
        customer = self._base(
            "cus",
            "customer",
            address=None,
            balance=0,
            currency=None,
            default_source=None,
            delinquent=False,
            description=None,
            email=None,
            invoice_prefix=_token(8).upper(),
            invoice_settings={
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            metadata={},
            name=None,
            phone=None,
            preferred_locales=[],
            shipping=None,
            tax_exempt="none",
            tax_ids=_list_object([], ""),
        )
        customer["tax_ids"]["url"] = f"/v1/customers/{customer['id']}/tax_ids"
        self._apply_customer_params(customer, params)
        self._add_tax_ids(customer, params.get("tax_id_data"))
        return self._store(customer)

    def update_customer(self, customer_id: str, params: JSON) -> JSON:
        customer = self.get("customer", customer_id)
        self._apply_customer_params(customer, params)
        return customer

    def _apply_customer_params(self, customer: JSON, params: JSON) -> None:
        for name in ("email", "name", "phone", "description"):
            if name in params:
                customer[name] = _text(params[name])
        if "address" in params:
            customer["address"] = _address(params["address"], "address")
        if "shipping" in params:
            customer["shipping"] = params["shipping"] or None
        if "preferred_locales" in params:
            customer["preferred_locales"] = list(params["preferred_locales"] or [])
        if "tax_exempt" in params:
            customer["tax_exempt"] = params["tax_exempt"]
        customer["metadata"] = _merge_metadata(customer["metadata"], params.get("metadata"))

    def _add_tax_ids(self, customer: JSON, tax_id_data: Any) -> None:
        for index, entry in enumerate(tax_id_data or []):
            prefix = f"tax_id_data[{index}]["
            kind, value = entry.get("type"), str(entry.get("value", ""))
            pattern = TAX_ID_FORMATS.get(kind or "")
            if pattern is not None and not pattern.match(value):
                # Stripe checks each type's format (and refuses the whole request).
                raise StripeApiError(
                    400,
                    f"Invalid value for {kind}.",
                    code="tax_id_invalid",
                    param=f"tax_id_data[{index}][value]",
                )
            tax_id = self._base(
                "txi",
                "tax_id",
                country=None,
                customer=customer["id"],
                type=_require(entry, "type", prefix=prefix),
                value=_require(entry, "value", prefix=prefix),
            )
            customer["tax_ids"]["data"].append(tax_id)
            customer["tax_ids"]["total_count"] += 1

    def delete_customer(self, customer_id: str) -> JSON:
        self.get("customer", customer_id)
        stub = {"id": customer_id, "object": "customer", "deleted": True}
        self.objects[customer_id] = stub
        return stub

    def list_customers(self, params: JSON) -> JSON:
        limit = min(_int(params.get("limit", 10), "limit", minimum=1), 100)
        customers = [
            obj
            for obj in reversed(self.objects.values())  # Stripe lists newest first
            if obj.get("object") == "customer" and not obj.get("deleted")
        ]
        if params.get("email"):
            customers = [c for c in customers if c["email"] == params["email"]]
        if params.get("starting_after"):
            ids = [c["id"] for c in customers]
            start = params["starting_after"]
            customers = customers[ids.index(start) + 1 :] if start in ids else []
        page = _list_object(customers[:limit], "/v1/customers")
        page["has_more"] = len(customers) > limit
        del page["total_count"]
        return page

    # -- products and prices ----------------------------------------------------------------

    def _build_product(self, params: JSON, *, prefix: str = "") -> JSON:
        product = self._base(
            "prod",
            "product",
            active=True,
            default_price=None,
            description=_text(params.get("description")),
            images=list(params.get("images") or []),
            metadata=_merge_metadata({}, params.get("metadata")),
            name=_require(params, "name", prefix=prefix),
            statement_descriptor=_text(params.get("statement_descriptor")),
            tax_code=_text(params.get("tax_code")),
            type="service",
            unit_label=_text(params.get("unit_label")),
            url=_text(params.get("url")),
        )
        product["updated"] = product["created"]
        if params.get("id"):
            # Stripe lets callers choose product ids; Store may key products by its own key.
            if params["id"] in self.objects:
                raise StripeApiError(
                    400, f"Product already exists: {params['id']}", code="resource_already_exists"
                )
            product["id"] = params["id"]
        return product

    def create_product(self, params: JSON) -> JSON:
        return self._store(self._build_product(params))

    def update_product(self, product_id: str, params: JSON) -> JSON:
        product = self.get("product", product_id)
        for name in ("name", "description", "statement_descriptor", "tax_code", "url"):
            if name in params:
                product[name] = _text(params[name])
        if "active" in params:
            product["active"] = _bool(params["active"], "active")
        product["metadata"] = _merge_metadata(product["metadata"], params.get("metadata"))
        product["updated"] = self.now()
        return product

    def _build_price(self, params: JSON, *, prefix: str = "") -> tuple[JSON, JSON | None]:
        """A price and, when ``product_data`` is given, the product it creates (not stored)."""
        product_data = params.get("product_data")
        if params.get("product") and product_data:
            raise invalid_param(_child(prefix, "product"), "Pass either product or product_data.")
        new_product = None
        if product_data:
            new_product = self._build_product(
                _dict(product_data, _child(prefix, "product_data")),
                prefix=_child(prefix, "product_data") + "[",
            )
            product_id = new_product["id"]
        else:
            product_id = _require(params, "product", prefix=prefix)
            self.get("product", product_id, param=_child(prefix, "product"))
        unit_amount = _int(
            _require(params, "unit_amount", prefix=prefix), _child(prefix, "unit_amount")
        )
        if unit_amount > _MAX_AMOUNT:
            raise invalid_param(
                _child(prefix, "unit_amount"),
                f"This value must be less than or equal to {_MAX_AMOUNT}.",
            )
        currency = str(_require(params, "currency", prefix=prefix)).lower()
        if pycountry.currencies.get(alpha_3=currency.upper()) is None:
            raise invalid_param(_child(prefix, "currency"), f"Invalid currency: {currency}.")
        price = self._base(
            "price",
            "price",
            active=True,
            billing_scheme="per_unit",
            currency=currency,
            lookup_key=_text(params.get("lookup_key")),
            metadata=_merge_metadata({}, params.get("metadata")),
            nickname=_text(params.get("nickname")),
            product=product_id,
            recurring=self._recurring(params.get("recurring"), _child(prefix, "recurring")),
            tax_behavior=params.get("tax_behavior") or "unspecified",
            type="one_time",
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
        )
        if price["recurring"]:
            price["type"] = "recurring"
        return price, new_product

    @staticmethod
    def _recurring(value: Any, param: str) -> JSON | None:
        if value in (None, ""):
            return None
        given = _dict(value, param)
        interval = _require(given, "interval", prefix=param + "[")
        if interval not in _INTERVALS:
            raise invalid_param(param + "[interval]", f"Invalid interval: {interval}")
        count = _int(given.get("interval_count", 1), param + "[interval_count]", minimum=1)
        if count > _MAX_INTERVAL_COUNT[interval]:
            raise invalid_param(
                param + "[interval_count]",
                "The maximum billing interval is 3 years (1095 days, 156 weeks, 36 months or "
                f"3 years); {count} {interval}s is longer.",
            )
        return {
            "interval": interval,
            "interval_count": count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }

    def create_price(self, params: JSON) -> JSON:
        price, product = self._build_price(params)
        if product:
            self._store(product)
        return self._store(price)

    # -- checkout sessions ------------------------------------------------------------------

    def create_checkout_session(self, params: JSON, call: ApiCall) -> JSON:
        mode = _require(params, "mode")
        if mode not in ("payment", "subscription"):
            raise invalid_param("mode", f"The fake supports payment and subscription, not {mode}.")
        customer_id = _text(params.get("customer"))
        if customer_id:
            self.get("customer", customer_id, param="customer")
            if params.get("customer_email"):
                raise invalid_param("customer_email", "Pass either customer or customer_email.")
        lines, created = self._session_lines(params.get("line_items"))
        currency = self._check_lines(mode, lines)
        _check_line_counts(mode, lines)
        payment_intent_data = self._mode_only(params, "payment_intent_data", mode, "payment")
        subscription_data = self._mode_only(params, "subscription_data", mode, "subscription")
        _check_descriptors(payment_intent_data)
        _check_shipping(payment_intent_data.get("shipping"))
        amount = sum(line.amount for line in lines)
        session = self._base(
            "cs_test",
            "checkout.session",
            amount_subtotal=amount,
            amount_total=amount,
            automatic_tax={
                "enabled": _dict(params.get("automatic_tax"), "automatic_tax").get("enabled")
                == "true",
                "liability": None,
                "status": None,
            },
            cancel_url=_url(params.get("cancel_url"), "cancel_url"),
            client_reference_id=_text(params.get("client_reference_id")),
            currency=currency,
            customer=customer_id,
            customer_creation=None
            if customer_id
            else params.get("customer_creation", "if_required"),
            customer_details=None,
            customer_email=_text(params.get("customer_email")),
            expires_at=self.now() + _DAY,
            invoice=None,
            locale=_text(params.get("locale")),
            metadata=_merge_metadata({}, params.get("metadata")),
            mode=mode,
            payment_intent=None,
            payment_method_types=["card"],
            payment_status="unpaid",
            status="open",
            subscription=None,
            success_url=_url(params.get("success_url"), "success_url"),
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            ui_mode=params.get("ui_mode", "hosted_page"),
        )
        session["url"] = f"{call.base_url}checkout/{session['id']}"
        for obj in created:
            self._store(obj)
        self._sessions[session["id"]] = _SessionRecord(
            lines, payment_intent_data, subscription_data
        )
        return self._store(session)

    def _session_lines(self, raw_lines: Any) -> tuple[list[_SessionLine], list[JSON]]:
        if not raw_lines:
            raise missing_param("line_items")
        if not isinstance(raw_lines, list):
            raise invalid_param("line_items", "line_items must be an array.")
        lines: list[_SessionLine] = []
        created: list[JSON] = []
        for index, raw in enumerate(raw_lines):
            prefix = f"line_items[{index}]"
            given = _dict(raw, prefix)
            quantity = _int(_require(given, "quantity", prefix=prefix + "["), prefix, minimum=1)
            if given.get("price"):
                price = self.get("price", given["price"], param=f"{prefix}[price]")
            elif given.get("price_data"):
                # Inline prices are real objects at Stripe too, retrievable by id.
                price_data = _dict(given["price_data"], f"{prefix}[price_data]")
                price, product = self._build_price(price_data, prefix=f"{prefix}[price_data][")
                price["active"] = False
                created += [obj for obj in (product, price) if obj]
            else:
                raise missing_param(f"{prefix}[price]")
            lines.append(_SessionLine(price, quantity))
        return lines, created

    @staticmethod
    def _check_lines(mode: str, lines: list[_SessionLine]) -> str:
        currencies = {line.price["currency"] for line in lines}
        if len(currencies) > 1:
            raise invalid_param("line_items", "All line items must use the same currency.")
        recurring = [line.price["recurring"] for line in lines if line.price["recurring"]]
        if mode == "payment" and recurring:
            raise invalid_param(
                "line_items",
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
            )
        if mode == "subscription" and not recurring:
            raise invalid_param(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode.",
            )
        cycles = {(r["interval"], r["interval_count"]) for r in recurring}
        if len(cycles) > 1:
            raise invalid_param("line_items", "All recurring prices must share one interval.")
        return currencies.pop()

    @staticmethod
    def _mode_only(params: JSON, name: str, mode: str, allowed_mode: str) -> JSON:
        value = _dict(params.get(name), name)
        if value and mode != allowed_mode:
            raise invalid_param(name, f"You can not pass `{name}` in `{mode}` mode.")
        return value

    def session_line_items(self, session_id: str) -> JSON:
        record = self._sessions[self.get("checkout.session", session_id)["id"]]
        items = [self._line_item(line) for line in record.lines]
        return _list_object(items, f"/v1/checkout/sessions/{session_id}/line_items")

    def _line_item(self, line: _SessionLine) -> JSON:
        product = self.objects.get(line.price["product"], {})
        return {
            "id": line.id,
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": line.amount,
            "amount_tax": 0,
            "amount_total": line.amount,
            "currency": line.price["currency"],
            "description": product.get("name"),
            "price": copy.deepcopy(line.price),
            "quantity": line.quantity,
        }

    def expire_checkout_session(self, session_id: str, call: ApiCall | None = None) -> JSON:
        session = self.get("checkout.session", session_id)
        if session["status"] != "open":
            raise wrong_state(
                'Only Checkout Sessions with a status in ["open"] can be expired. '
                f"This Checkout Session has a status of {session['status']}."
            )
        session.update(status="expired", url=None)
        self.emit("checkout.session.expired", session, call=call)
        return session

    # -- checkout lifecycle (test actions) --------------------------------------------------

    def _complete(self, session_id: str, *, paid: bool) -> JSON:
        session = self.get("checkout.session", session_id)
        if session["status"] != "open":
            raise wrong_state(f"Checkout Session {session_id} is {session['status']}, not open.")
        record = self._sessions[session_id]
        customer = self._session_customer(session)
        session.update(
            status="complete", url=None, customer_details=_customer_details(session, customer)
        )
        if session["mode"] == "payment":
            intent = self._create_payment_intent(session, record, succeeded=paid)
            session["payment_intent"] = intent["id"]
            self._emit_payment(intent, succeeded=paid)
        else:
            subscription, invoice = self._start_subscription(session, record, paid=paid)
            session.update(subscription=subscription["id"], invoice=invoice["id"])
            self.emit("customer.subscription.created", subscription)
            self.emit("invoice.created", invoice)
            self.emit("invoice.finalized", invoice)
        session["payment_status"] = _payment_status(session, paid=paid)
        self.emit("checkout.session.completed", session)
        if paid and session["invoice"]:
            self._emit_invoice_paid(self.objects[session["invoice"]])
        return session

    def _emit_invoice_paid(self, invoice: JSON) -> None:
        payment = next(
            o
            for o in self.objects.values()
            if o.get("object") == "invoice_payment" and o["invoice"] == invoice["id"]
        )
        self._emit_payment(self.objects[payment["payment"]["payment_intent"]], succeeded=True)
        self.emit("invoice.paid", invoice)
        self.emit("invoice.payment_succeeded", invoice)

    def _session_customer(self, session: JSON) -> JSON | None:
        if session["customer"]:
            return self.get("customer", session["customer"])
        # Subscriptions always get a customer; payments only when asked for.
        if session["mode"] == "subscription" or session["customer_creation"] == "always":
            customer = self.create_customer({"email": session["customer_email"] or ""})
            session["customer"] = customer["id"]
            return customer
        return None

    def _create_payment_intent(
        self, session: JSON, record: _SessionRecord, *, succeeded: bool
    ) -> JSON:
        data = record.payment_intent_data
        intent = self._base(
            "pi",
            "payment_intent",
            amount=session["amount_total"],
            amount_received=session["amount_total"] if succeeded else 0,
            currency=session["currency"],
            customer=session["customer"],
            description=_text(data.get("description")),
            last_payment_error=None,
            latest_charge=None,
            metadata=_merge_metadata({}, data.get("metadata")),
            payment_method_types=["card"],
            statement_descriptor=_text(data.get("statement_descriptor")),
            statement_descriptor_suffix=_text(data.get("statement_descriptor_suffix")),
            shipping=data.get("shipping"),
            status="succeeded" if succeeded else "processing",
        )
        return self._store(intent)

    async def complete_checkout_session(
        self, session_id: str, *, async_payment: bool = False
    ) -> ActionReport:
        """The shopper pays; with ``async_payment`` the money is still on its way."""
        return await self._report(self._complete(session_id, paid=not async_payment))

    async def succeed_async_payment(self, session_id: str) -> ActionReport:
        """A delayed payment method (SEPA, bank transfer...) settles."""
        session = self._awaiting_payment(session_id)
        session["payment_status"] = "paid"
        if session["payment_intent"]:
            intent = self.objects[session["payment_intent"]]
            intent.update(status="succeeded", amount_received=intent["amount"])
        self.emit("checkout.session.async_payment_succeeded", session)
        if session["invoice"]:
            self._settle_invoice(self.objects[session["invoice"]])
            self._emit_invoice_paid(self.objects[session["invoice"]])
            self._set_subscription_status(self.objects[session["subscription"]], "active")
        return await self._report(session)

    async def fail_async_payment(self, session_id: str) -> ActionReport:
        """A delayed payment method is refused; the session stays unpaid."""
        session = self._awaiting_payment(session_id)
        if session["payment_intent"]:
            intent = self.objects[session["payment_intent"]]
            intent.update(
                status="requires_payment_method",
                last_payment_error={"code": "payment_method_refused", "type": "card_error"},
            )
            self.emit("payment_intent.payment_failed", intent)
        self.emit("checkout.session.async_payment_failed", session)
        if session["invoice"]:
            self.emit("invoice.payment_failed", self.objects[session["invoice"]])
        return await self._report(session)

    def _awaiting_payment(self, session_id: str) -> JSON:
        session = self.get("checkout.session", session_id)
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            raise wrong_state(f"Checkout Session {session_id} is not awaiting an async payment.")
        return session

    async def expire_session(self, session_id: str) -> ActionReport:
        """The session times out (or is abandoned) without payment."""
        return await self._report(self.expire_checkout_session(session_id))

    # -- subscriptions and invoices ---------------------------------------------------------

    def _start_subscription(
        self, session: JSON, record: _SessionRecord, *, paid: bool
    ) -> tuple[JSON, JSON]:
        start = self.now()
        recurring = [line for line in record.lines if line.price["recurring"]]
        cycle = recurring[0].price["recurring"]
        end = add_interval(start, cycle["interval"], cycle["interval_count"])
        subscription = self._base(
            "sub",
            "subscription",
            billing_cycle_anchor=start,
            cancel_at=None,
            cancel_at_period_end=False,
            canceled_at=None,
            cancellation_details={"comment": None, "feedback": None, "reason": None},
            collection_method="charge_automatically",
            currency=session["currency"],
            customer=session["customer"],
            default_payment_method=None,
            description=_text(record.subscription_data.get("description")),
            ended_at=None,
            latest_invoice=None,
            metadata=_merge_metadata({}, record.subscription_data.get("metadata")),
            start_date=start,
            status="active" if paid else "incomplete",
            trial_end=None,
            trial_start=None,
        )
        items = [self._subscription_item(subscription, line, start, end) for line in recurring]
        subscription["items"] = _list_object(
            items, f"/v1/subscription_items?subscription={subscription['id']}"
        )
        self._store(subscription)
        # The first invoice also carries the one-time prices bought with the subscription.
        invoice = self._create_invoice(
            subscription, record.lines, billing_reason="subscription_create", paid=paid
        )
        return subscription, invoice

    def _subscription_item(
        self, subscription: JSON, line: _SessionLine, start: int, end: int
    ) -> JSON:
        # Periods live on the items in the current API (no longer on the subscription).
        return self._base(
            "si",
            "subscription_item",
            current_period_end=end,
            current_period_start=start,
            metadata={},
            price=copy.deepcopy(line.price),
            quantity=line.quantity,
            subscription=subscription["id"],
        )

    def _create_invoice(
        self, subscription: JSON, lines: list[_SessionLine], *, billing_reason: str, paid: bool
    ) -> JSON:
        self._invoice_number += 1
        amount = sum(line.amount for line in lines)
        customer = self.objects.get(subscription["customer"] or "", {})
        invoice_id = new_id("in")
        invoice = self._base(
            "in",
            "invoice",
            id=invoice_id,
            amount_due=amount,
            amount_paid=0,
            amount_remaining=amount,
            attempt_count=1,
            attempted=True,
            billing_reason=billing_reason,
            collection_method="charge_automatically",
            currency=subscription["currency"],
            customer=subscription["customer"],
            customer_email=customer.get("email"),
            # Where the customer pays a finalized invoice (or confirms it with their bank).
            hosted_invoice_url=f"https://invoice.stripe.test/i/acct_fake/{invoice_id}",
            metadata={},
            next_payment_attempt=None,
            number=f"FAKE-{self._invoice_number:04d}",
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": copy.deepcopy(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
            },
            period_end=_period(subscription)[1],
            period_start=_period(subscription)[0],
            status="open",
            status_transitions={
                "finalized_at": self.now(),
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            subtotal=amount,
            total=amount,
        )
        invoice_lines = [self._invoice_line(subscription, line) for line in lines]
        invoice["lines"] = _list_object(invoice_lines, f"/v1/invoices/{invoice['id']}/lines")
        if paid:
            self._settle_invoice(invoice)
        subscription["latest_invoice"] = invoice["id"]
        return self._store(invoice)

    def _invoice_line(self, subscription: JSON, line: _SessionLine) -> JSON:
        items = subscription["items"]["data"]
        item_id = next((i["id"] for i in items if i["price"]["id"] == line.price["id"]), None)
        product = self.objects.get(line.price["product"], {})
        return {
            "id": new_id("il"),
            "object": "line_item",
            "amount": line.amount,
            "currency": line.price["currency"],
            "description": f"{line.quantity} x {product.get('name')}",
            "metadata": {},
            "parent": {
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "subscription": subscription["id"],
                    "subscription_item": item_id,
                },
            },
            "period": {
                "start": _period(subscription)[0],
                "end": _period(subscription)[1],
            },
            "price": copy.deepcopy(line.price),
            "pricing": {
                "type": "price_details",
                "price_details": {"price": line.price["id"], "product": line.price["product"]},
                "unit_amount_decimal": line.price["unit_amount_decimal"],
            },
            "quantity": line.quantity,
            "subscription": subscription["id"],
        }

    def _settle_invoice(self, invoice: JSON) -> None:
        invoice.update(amount_paid=invoice["amount_due"], amount_remaining=0, status="paid")
        invoice["status_transitions"]["paid_at"] = self.now()
        self._record_invoice_payment(invoice)

    def _set_subscription_status(self, subscription: JSON, status: str) -> None:
        """Change the status; Stripe announces that with customer.subscription.updated."""
        previous = subscription["status"]
        if previous != status:
            subscription["status"] = status
            self.emit("customer.subscription.updated", subscription, previous={"status": previous})

    def update_subscription(self, subscription_id: str, params: JSON, call: ApiCall) -> JSON:
        subscription = self.get("subscription", subscription_id)
        before = copy.deepcopy(subscription)
        if "cancel_at_period_end" in params:
            if subscription["status"] == "canceled":
                raise wrong_state("A canceled subscription can only update its metadata.")
            self._cancel_at_period_end(
                subscription, _bool(params["cancel_at_period_end"], "cancel_at_period_end")
            )
        if "description" in params:
            subscription["description"] = _text(params["description"])
        subscription["metadata"] = _merge_metadata(subscription["metadata"], params.get("metadata"))
        previous = {k: v for k, v in before.items() if subscription.get(k) != v}
        if previous:
            self.emit("customer.subscription.updated", subscription, previous=previous, call=call)
        return subscription

    def _cancel_at_period_end(self, subscription: JSON, cancel: bool) -> None:
        subscription["cancel_at_period_end"] = cancel
        subscription["cancel_at"] = _period(subscription)[1] if cancel else None
        subscription["canceled_at"] = self.now() if cancel else None
        reason = "cancellation_requested" if cancel else None
        subscription["cancellation_details"]["reason"] = reason

    def cancel_subscription(self, subscription_id: str, call: ApiCall | None = None) -> JSON:
        subscription = self.get("subscription", subscription_id)
        if subscription["status"] in SUBSCRIPTION_ENDED:
            # Stripe treats an ended subscription as deleted for DELETE (it can still be
            # retrieved): "No such subscription", 404, whatever idempotency key is sent.
            raise no_such("subscription", subscription_id)
        now = self.now()
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        subscription["cancellation_details"]["reason"] = "cancellation_requested"
        self.emit("customer.subscription.deleted", subscription, call=call)
        return subscription

    def _bill_next_period(
        self, subscription_id: str, *, paid: bool, action_required: bool = False
    ) -> JSON:
        subscription = self.get("subscription", subscription_id)
        if subscription["status"] not in ("active", "past_due"):
            raise wrong_state(f"Subscription {subscription_id} is {subscription['status']}.")
        if subscription["cancel_at_period_end"]:
            # The period ran out on a subscription set to cancel: it ends, nothing is billed.
            subscription.update(status="canceled", ended_at=_period(subscription)[1])
            self.emit("customer.subscription.deleted", subscription)
            return subscription
        self._advance_period(subscription)
        lines = [_SessionLine(i["price"], i["quantity"]) for i in subscription["items"]["data"]]
        invoice = self._create_invoice(
            subscription, lines, billing_reason="subscription_cycle", paid=paid
        )
        self.emit("invoice.created", invoice)
        self.emit("invoice.finalized", invoice)
        if paid:
            self._emit_invoice_paid(invoice)
            self._set_subscription_status(subscription, "active")
        else:
            invoice["next_payment_attempt"] = self.now() + 3 * _DAY
            self.emit(
                "invoice.payment_action_required" if action_required else "invoice.payment_failed",
                invoice,
            )
            self._set_subscription_status(subscription, "past_due")
        return subscription

    def _advance_period(self, subscription: JSON) -> None:
        cycle = subscription["items"]["data"][0]["price"]["recurring"]
        start = _period(subscription)[1]
        end = add_interval(start, cycle["interval"], cycle["interval_count"])
        for item in subscription["items"]["data"]:
            item.update(current_period_start=start, current_period_end=end)

    async def renew_subscription(self, subscription_id: str) -> ActionReport:
        """The period ends and the next one is paid (or the subscription ends if set to)."""
        return await self._report(self._bill_next_period(subscription_id, paid=True))

    async def fail_renewal(self, subscription_id: str) -> ActionReport:
        """The period ends and charging for the next one fails: the subscription is past_due."""
        return await self._report(self._bill_next_period(subscription_id, paid=False))

    async def retry_failed_renewal(self, subscription_id: str) -> ActionReport:
        """Smart Retries charge the open invoice again and fail again: another
        `invoice.payment_failed` for the same invoice, one more attempt counted."""
        subscription = self.get("subscription", subscription_id)
        invoice = self.get("invoice", subscription["latest_invoice"])
        invoice["attempt_count"] += 1
        invoice["next_payment_attempt"] = self.now() + 5 * _DAY
        self.emit("invoice.payment_failed", invoice)
        return await self._report(invoice)

    async def require_action_on_renewal(self, subscription_id: str) -> ActionReport:
        """The period ends and the bank wants the customer to confirm the charge (3-D Secure):
        `invoice.payment_action_required`; the subscription is past_due until they do."""
        subscription = self._bill_next_period(subscription_id, paid=False, action_required=True)
        return await self._report(subscription)

    # -- refunds ----------------------------------------------------------------------------

    def create_refund(self, params: JSON, call: ApiCall) -> JSON:
        intent_id = _require(params, "payment_intent")
        intent = self.get("payment_intent", intent_id, param="payment_intent")
        if intent["status"] != "succeeded":
            raise invalid_param(
                "payment_intent",
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            )
        refundable = intent["amount_received"] - intent.setdefault("amount_refunded", 0)
        if refundable <= 0:
            raise StripeApiError(
                400,
                f"Charge for PaymentIntent {intent_id} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = _int(params.get("amount", refundable), "amount", minimum=1)
        if amount > refundable:
            raise invalid_param(
                "amount",
                f"Refund amount ({amount}) is greater than unrefunded amount ({refundable}).",
            )
        reason = params.get("reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid_param("reason", f"Invalid reason: {reason}")
        intent["amount_refunded"] += amount
        refund = self._base(
            "re",
            "refund",
            amount=amount,
            currency=intent["currency"],
            metadata=_merge_metadata({}, params.get("metadata")),
            payment_intent=intent_id,
            reason=reason,
            status=self.refund_status,
            failure_reason=None,
        )
        self.emit("refund.created", refund, call=call)
        if intent.get("latest_charge"):
            charge = self.objects[intent["latest_charge"]]
            charge["amount_refunded"] = intent["amount_refunded"]
            self.emit("charge.refunded", charge, call=call)
        return self._store(refund)

    async def settle_refund(
        self, refund_id: str, status: str, *, failure_reason: str | None = None
    ) -> ActionReport:
        """A pending refund ends: `succeeded`, or `failed` / `canceled` (the money stays with the
        shop, and Stripe says so with `refund.updated` and, when it failed, `refund.failed`)."""
        refund = self.get("refund", refund_id)
        if refund["status"] not in ("pending", "requires_action"):
            raise wrong_state(f"Refund {refund_id} is {refund['status']}, not pending.")
        previous = {"status": refund["status"]}
        refund["status"] = status
        if status != "succeeded":
            refund["failure_reason"] = failure_reason or "unknown"
            intent = self.objects[refund["payment_intent"]]
            intent["amount_refunded"] -= refund["amount"]
        self.emit("refund.updated", refund, previous=previous)
        if status == "failed":
            self.emit("refund.failed", refund)
        return await self._report(refund)

    # -- the customer portal ----------------------------------------------------------------

    def create_portal_session(self, params: JSON) -> JSON:
        """A short-lived link to the customer portal of one customer."""
        customer = self.get("customer", _require(params, "customer"), param="customer")
        session = self._base(
            "bps",
            "billing_portal.session",
            customer=customer["id"],
            return_url=_url(params.get("return_url"), "return_url"),
            url=f"https://billing.stripe.test/p/session/{new_id('test', 32)}",
        )
        return self._store(session)

    # -- disputes ---------------------------------------------------------------------------

    async def open_dispute(
        self, payment_intent_id: str, *, reason: str = "fraudulent", inquiry: bool = False
    ) -> ActionReport:
        """The shopper's bank disputes a payment: a chargeback (`needs_response`, the amount
        withdrawn) or an inquiry (`warning_needs_response`), evidence due in 21 days."""
        intent = self.get("payment_intent", payment_intent_id)
        dispute = self._store(
            self._base(
                "du",
                "dispute",
                amount=intent["amount_received"],
                currency=intent["currency"],
                charge=intent.get("latest_charge"),
                payment_intent=payment_intent_id,
                reason=reason,
                status="warning_needs_response" if inquiry else "needs_response",
                evidence_details={"due_by": self.now() + 21 * 86_400, "has_evidence": False},
                is_charge_refundable=False,
            )
        )
        self.emit("charge.dispute.created", dispute)
        if not inquiry:
            self.emit("charge.dispute.funds_withdrawn", dispute)
        return await self._report(dispute)

    async def move_dispute(self, dispute_id: str, status: str) -> ActionReport:
        """A dispute moves on (`under_review` once evidence is in) or ends (`won`, `lost`,
        `warning_closed`): `charge.dispute.updated`, or `charge.dispute.closed`."""
        dispute = self.get("dispute", dispute_id)
        previous = {"status": dispute["status"]}
        dispute["status"] = status
        closed = status in ("won", "lost", "warning_closed", "prevented")
        self.emit(
            "charge.dispute.closed" if closed else "charge.dispute.updated",
            dispute,
            previous=previous,
        )
        if status == "won":
            self.emit("charge.dispute.funds_reinstated", dispute)
        return await self._report(dispute)

    def list_invoices(self, params: JSON) -> JSON:
        """`GET /v1/invoices`, newest first, filtered as Stripe filters (subscription, customer,
        status, a `created` range), paginated by `starting_after` and `limit`."""
        limit = min(_int(params.get("limit", 10), "limit", minimum=1), 100)
        status = params.get("status")
        if status is not None and status not in ("draft", "open", "paid", "uncollectible", "void"):
            raise invalid_param(
                "status",
                f"Invalid status: must be one of draft, open, paid, "
                f"uncollectible or void; got {status!r}",
            )
        invoices = [
            obj for obj in reversed(self.objects.values()) if obj.get("object") == "invoice"
        ]
        if params.get("subscription"):
            subscription = self.get("subscription", params["subscription"], param="subscription")
            invoices = [
                i
                for i in invoices
                if i["parent"]["subscription_details"]["subscription"] == subscription["id"]
            ]
        if params.get("customer"):
            invoices = [i for i in invoices if i["customer"] == params["customer"]]
        if status is not None:
            invoices = [i for i in invoices if i["status"] == status]
        created = params.get("created")
        if created is not None:
            if not isinstance(created, dict):
                created = {"eq": created}
            bounds = {op: _int(value, f"created[{op}]") for op, value in created.items()}
            checks = {
                "eq": lambda at, bound: at == bound,
                "gt": lambda at, bound: at > bound,
                "gte": lambda at, bound: at >= bound,
                "lt": lambda at, bound: at < bound,
                "lte": lambda at, bound: at <= bound,
            }
            for op, bound in bounds.items():
                if op not in checks:
                    raise invalid_param(f"created[{op}]", "Received unknown parameter")
                invoices = [i for i in invoices if checks[op](i["created"], bound)]
        if params.get("starting_after"):
            ids = [i["id"] for i in invoices]
            start = params["starting_after"]
            invoices = invoices[ids.index(start) + 1 :] if start in ids else []
        page = _list_object(invoices[:limit], "/v1/invoices")
        page["has_more"] = len(invoices) > limit
        del page["total_count"]
        return page

    def list_invoice_payments(self, params: JSON) -> JSON:
        invoice_id = _require(params, "invoice")
        invoice = self.get("invoice", invoice_id, param="invoice")
        payments = [p for p in self.objects.values() if p.get("object") == "invoice_payment"]
        found = [p for p in payments if p["invoice"] == invoice["id"]]
        return _list_object(found, f"/v1/invoice_payments?invoice={invoice_id}")

    def _record_invoice_payment(self, invoice: JSON) -> None:
        """A paid invoice has a PaymentIntent behind it (listed as an invoice payment)."""
        intent = self._base(
            "pi",
            "payment_intent",
            amount=invoice["amount_paid"],
            amount_received=invoice["amount_paid"],
            currency=invoice["currency"],
            customer=invoice["customer"],
            metadata={},
            status="succeeded",
        )
        self._store(intent)
        payment = self._base(
            "inpay",
            "invoice_payment",
            amount_paid=invoice["amount_paid"],
            amount_requested=invoice["amount_due"],
            currency=invoice["currency"],
            invoice=invoice["id"],
            is_default=True,
            payment={"type": "payment_intent", "payment_intent": intent["id"]},
            status="paid",
        )
        self._store(payment)

    async def resend_event(self, event_id: str) -> ActionReport:
        """Deliver a recorded event again, same id and snapshot, fresh signature."""
        event = self.get("event", event_id)
        return ActionReport(copy.deepcopy(event), await self.webhooks.deliver_all([event]))


def _period(subscription: JSON) -> tuple[int, int]:
    """The subscription's current period, from its items (all share one cycle here)."""
    item = subscription["items"]["data"][0]
    return int(item["current_period_start"]), int(item["current_period_end"])


def _check_descriptors(payment_intent_data: JSON) -> None:
    if payment_intent_data.get("statement_descriptor") is not None:
        # Checkout pays by card here, and cards only take a suffix to the account's prefix.
        raise invalid_param(
            "payment_intent_data[statement_descriptor]",
            "The `statement_descriptor` parameter is not supported for the `card` payment "
            "method type. Please use `statement_descriptor_suffix` instead.",
        )
    suffix = payment_intent_data.get("statement_descriptor_suffix")
    if suffix is None:
        return
    param = "payment_intent_data[statement_descriptor_suffix]"
    if len(suffix) > 22:
        raise invalid_param(param, "statement_descriptor_suffix must be at most 22 characters.")
    if not any(c.isascii() and c.isalpha() for c in suffix):
        raise invalid_param(
            param, "The statement descriptor suffix must contain at least one letter."
        )
    if any(c in "<>\\'\"*" for c in suffix) or not suffix.isascii():
        raise invalid_param(param, "The statement descriptor suffix contains invalid characters.")


def _check_shipping(shipping: Any) -> None:
    """A payment's shipping details need a recipient and an address (Stripe's required
    fields), with a two-letter country."""
    if shipping is None:
        return
    prefix = "payment_intent_data[shipping]"
    if not _text(shipping.get("name")):
        raise missing_param(f"{prefix}[name]")
    address = shipping.get("address")
    if not isinstance(address, dict) or not address:
        raise missing_param(f"{prefix}[address]")
    country = address.get("country")
    if country is not None and (len(str(country)) != 2 or not str(country).isalpha()):
        raise invalid_param(f"{prefix}[address][country]", "Country must be a 2-letter code.")


def _check_line_counts(mode: str, lines: list[_SessionLine]) -> None:
    recurring = sum(1 for line in lines if line.price["recurring"])
    if mode == "payment" and len(lines) > 100:
        raise invalid_param("line_items", "You may only specify up to 100 line items.")
    if mode == "subscription" and max(recurring, len(lines) - recurring) > 20:
        raise invalid_param(
            "line_items",
            "Subscription mode takes up to 20 recurring and 20 one-time line items.",
        )


def _customer_details(session: JSON, customer: JSON | None) -> JSON:
    customer = customer or {}
    return {
        "address": customer.get("address"),
        "email": customer.get("email") or session["customer_email"],
        "name": customer.get("name"),
        "phone": customer.get("phone"),
        "tax_exempt": customer.get("tax_exempt", "none"),
        "tax_ids": [],
    }


def _payment_status(session: JSON, *, paid: bool) -> str:
    if session["amount_total"] == 0:
        return "no_payment_required"
    return "paid" if paid else "unpaid"


# ---------------------------------------------------------------------------------------------
# HTTP layer

ApiHandler = Callable[[FakeStripe, JSON, ApiCall], JSON]


def fake_stripe_of(app: Starlette) -> FakeStripe:
    """The FakeStripe behind an app made by ``create_fake_stripe_app``."""
    return cast(FakeStripe, app.state.fake_stripe)


async def _read_call(request: Request) -> ApiCall:
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8")
        pairs += parse_qsl(body, keep_blank_values=True)
    return ApiCall(
        method=request.method,
        path=request.url.path,
        pairs=pairs,
        authorization=request.headers.get("authorization"),
        # Stripe honours idempotency keys on POST only.
        idempotency_key=request.headers.get("idempotency-key")
        if request.method == "POST"
        else None,
        stripe_version=request.headers.get("stripe-version"),
        base_url=str(request.base_url),
    )


def _api_response(fake: FakeStripe, call: ApiCall, result: ApiResult) -> Response:
    headers = {
        "Request-Id": call.request_id,
        "Stripe-Version": call.stripe_version or fake.api_version,
    }
    if call.idempotency_key:
        headers["Idempotency-Key"] = call.idempotency_key
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if result.status >= 400 and not result.transient:
        # Our errors are deterministic; stop the SDK from retrying them.
        headers["Stripe-Should-Retry"] = "false"
    return JSONResponse(result.body, status_code=result.status, headers=headers)


def _api_endpoint(
    handler: ApiHandler, params_type: type | None
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        fake = fake_stripe_of(request.app)
        call = await _read_call(request)
        result = fake.call(call, handler, params_type)
        fake.webhooks.deliver_later(fake.take_outbox())
        return _api_response(fake, call, result)

    return endpoint


def _unrecognized(fake: FakeStripe, params: JSON, call: ApiCall) -> JSON:
    raise StripeApiError(404, f"Unrecognized request URL ({call.method}: {call.path}).")


def _path_id(call: ApiCall, index: int = -1) -> str:
    return call.path.rstrip("/").split("/")[index]


def _api_route(path: str, method: str, handler: ApiHandler, params_type: type | None) -> Route:
    return Route(path, _api_endpoint(handler, params_type), methods=[method])


def _api_routes() -> list[Route]:
    # Handlers read ids from the path themselves, so every handler has one signature.
    return [
        _api_route(
            "/v1/customers", "POST", lambda f, p, c: f.create_customer(p), sp.CustomerCreateParams
        ),
        _api_route(
            "/v1/customers", "GET", lambda f, p, c: f.list_customers(p), sp.CustomerListParams
        ),
        _api_route(
            "/v1/customers/{id}",
            "GET",
            lambda f, p, c: f.get("customer", _path_id(c)),
            sp.CustomerRetrieveParams,
        ),
        _api_route(
            "/v1/customers/{id}",
            "POST",
            lambda f, p, c: f.update_customer(_path_id(c), p),
            sp.CustomerUpdateParams,
        ),
        _api_route(
            "/v1/customers/{id}",
            "DELETE",
            lambda f, p, c: f.delete_customer(_path_id(c)),
            sp.CustomerDeleteParams,
        ),
        _api_route(
            "/v1/products", "POST", lambda f, p, c: f.create_product(p), sp.ProductCreateParams
        ),
        _api_route(
            "/v1/products/{id}",
            "GET",
            lambda f, p, c: f.get("product", _path_id(c)),
            sp.ProductRetrieveParams,
        ),
        _api_route(
            "/v1/products/{id}",
            "POST",
            lambda f, p, c: f.update_product(_path_id(c), p),
            sp.ProductUpdateParams,
        ),
        _api_route("/v1/prices", "POST", lambda f, p, c: f.create_price(p), sp.PriceCreateParams),
        _api_route(
            "/v1/prices/{id}",
            "GET",
            lambda f, p, c: f.get("price", _path_id(c)),
            sp.PriceRetrieveParams,
        ),
        _api_route(
            "/v1/checkout/sessions",
            "POST",
            lambda f, p, c: f.create_checkout_session(p, c),
            spc.SessionCreateParams,
        ),
        _api_route(
            "/v1/checkout/sessions/{id}",
            "GET",
            lambda f, p, c: f.get("checkout.session", _path_id(c)),
            spc.SessionRetrieveParams,
        ),
        _api_route(
            "/v1/checkout/sessions/{id}/expire",
            "POST",
            lambda f, p, c: f.expire_checkout_session(_path_id(c, -2), c),
            spc.SessionExpireParams,
        ),
        _api_route(
            "/v1/checkout/sessions/{id}/line_items",
            "GET",
            lambda f, p, c: f.session_line_items(_path_id(c, -2)),
            spc.SessionListLineItemsParams,
        ),
        _api_route(
            "/v1/subscriptions/{id}",
            "GET",
            lambda f, p, c: f.get("subscription", _path_id(c)),
            sp.SubscriptionRetrieveParams,
        ),
        _api_route(
            "/v1/subscriptions/{id}",
            "POST",
            lambda f, p, c: f.update_subscription(_path_id(c), p, c),
            sp.SubscriptionUpdateParams,
        ),
        _api_route(
            "/v1/subscriptions/{id}",
            "DELETE",
            lambda f, p, c: f.cancel_subscription(_path_id(c), c),
            sp.SubscriptionCancelParams,
        ),
        _api_route("/v1/invoices", "GET", lambda f, p, c: f.list_invoices(p), sp.InvoiceListParams),
        _api_route(
            "/v1/invoices/{id}",
            "GET",
            lambda f, p, c: f.get("invoice", _path_id(c)),
            sp.InvoiceRetrieveParams,
        ),
        _api_route(
            "/v1/payment_intents/{id}",
            "GET",
            lambda f, p, c: f.get("payment_intent", _path_id(c)),
            sp.PaymentIntentRetrieveParams,
        ),
        _api_route(
            "/v1/refunds", "POST", lambda f, p, c: f.create_refund(p, c), sp.RefundCreateParams
        ),
        _api_route(
            "/v1/billing_portal/sessions",
            "POST",
            lambda f, p, c: f.create_portal_session(p),
            spb.SessionCreateParams,
        ),
        _api_route(
            "/v1/refunds/{id}",
            "GET",
            lambda f, p, c: f.get("refund", _path_id(c)),
            sp.RefundRetrieveParams,
        ),
        _api_route(
            "/v1/invoice_payments",
            "GET",
            lambda f, p, c: f.list_invoice_payments(p),
            sp.InvoicePaymentListParams,
        ),
        _api_route(
            "/v1/events/{id}",
            "GET",
            lambda f, p, c: f.get("event", _path_id(c)),
            sp.EventRetrieveParams,
        ),
        Route(
            "/v1/{rest:path}",
            _api_endpoint(_unrecognized, None),
            methods=["GET", "POST", "DELETE"],
        ),
    ]


# -- test-only routes -------------------------------------------------------------------------


def _action(
    run: Callable[[FakeStripe, Request], Awaitable[ActionReport]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            report = await run(fake_stripe_of(request.app), request)
        except StripeApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return JSONResponse(report.to_json())

    return endpoint


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


async def _list_events(request: Request) -> Response:
    fake = fake_stripe_of(request.app)
    wanted = request.query_params.get("type")
    events = [e for e in fake.events if wanted is None or e["type"] == wanted]
    return JSONResponse({"object": "list", "data": events})


async def _list_requests(request: Request) -> Response:
    fake = fake_stripe_of(request.app)
    rows = [vars(r) for r in fake.requests]
    return JSONResponse({"object": "list", "data": rows})


async def _list_deliveries(request: Request) -> Response:
    fake = fake_stripe_of(request.app)
    await fake.webhooks.drain()
    rows = [vars(d) for d in fake.webhooks.deliveries]
    return JSONResponse({"object": "list", "data": rows})


async def _configure_webhook(request: Request) -> Response:
    """Point deliveries elsewhere: the receiver is often started after the fake."""
    fake = fake_stripe_of(request.app)
    body = await request.json()
    if "url" in body:
        fake.webhooks.url = body["url"]
    if "secret" in body:
        fake.webhooks.secret = body["secret"]
    return JSONResponse({"url": fake.webhooks.url})


async def _hosted_checkout_page(request: Request) -> Response:
    """What the session ``url`` shows: enough for a test to follow a redirect to it."""
    fake = fake_stripe_of(request.app)
    try:
        session = fake.get("checkout.session", request.path_params["id"])
    except StripeApiError as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    keys = ("id", "mode", "status", "amount_total", "currency", "success_url", "cancel_url")
    return JSONResponse({key: session[key] for key in keys})


def _test_routes() -> list[Route]:
    sessions = "/_test/checkout/sessions/{id}"
    subscriptions = "/_test/subscriptions/{id}"
    return [
        Route(
            f"{sessions}/complete",
            _action(
                lambda f, r: f.complete_checkout_session(
                    r.path_params["id"], async_payment=_truthy(r.query_params.get("async"))
                )
            ),
            methods=["POST"],
        ),
        Route(
            f"{sessions}/async_succeeded",
            _action(lambda f, r: f.succeed_async_payment(r.path_params["id"])),
            methods=["POST"],
        ),
        Route(
            f"{sessions}/async_failed",
            _action(lambda f, r: f.fail_async_payment(r.path_params["id"])),
            methods=["POST"],
        ),
        Route(
            f"{sessions}/expire",
            _action(lambda f, r: f.expire_session(r.path_params["id"])),
            methods=["POST"],
        ),
        Route(
            f"{subscriptions}/renew",
            _action(lambda f, r: f.renew_subscription(r.path_params["id"])),
            methods=["POST"],
        ),
        Route(
            f"{subscriptions}/fail_renewal",
            _action(lambda f, r: f.fail_renewal(r.path_params["id"])),
            methods=["POST"],
        ),
        Route(
            "/_test/events/{id}/resend",
            _action(lambda f, r: f.resend_event(r.path_params["id"])),
            methods=["POST"],
        ),
        Route("/_test/events", _list_events, methods=["GET"]),
        Route("/_test/requests", _list_requests, methods=["GET"]),
        Route("/_test/deliveries", _list_deliveries, methods=["GET"]),
        Route("/_test/webhook_endpoint", _configure_webhook, methods=["POST"]),
        Route("/checkout/{id}", _hosted_checkout_page, methods=["GET"]),
    ]


def create_fake_stripe_app(
    *,
    webhook_url: str | None = None,
    webhook_secret: str = "whsec_test",
    api_key_prefix: str = "sk_test_",
    api_version: str | None = None,
    clock: Callable[[], float] = time.time,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    shuffle_seed: int | None = 0,
) -> Starlette:
    """Build one fake Stripe account as an ASGI app; its state lives in ``app.state``.

    ``webhook_transport`` lets events reach an in-process ASGI app (``httpx.ASGITransport``)
    without a socket; ``webhook_url`` must still be given (its host is then nominal).
    """
    fake = FakeStripe(
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        api_key_prefix=api_key_prefix,
        # Events carry the account's API version; default to the one the SDK pins.
        api_version=api_version or stripe.api_version,
        clock=clock,
        webhook_transport=webhook_transport,
        shuffle_seed=shuffle_seed,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await fake.webhooks.aclose()

    app = Starlette(routes=_api_routes() + _test_routes(), lifespan=lifespan)
    app.state.fake_stripe = fake
    return app
