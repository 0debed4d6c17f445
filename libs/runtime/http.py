"""Service-to-service HTTP: one pooled client per target, problems passed through, 503 on outage.

In embedded mode the transport is the target app itself (httpx with in-process ASGI); in
distributed mode it is aiohttp's keep-alive connection pool, which costs a fraction of the CPU
httpx spends per request under concurrency (see docs/performance.md). The calling code cannot
tell the difference: both answer an `httpx.Response`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from libs.contracts.common import PRINCIPAL_HEADER, FieldError, Principal
from libs.runtime.auth import PRINCIPAL_TTL_S, SERVICE_TOKEN_HEADER, sign_principal
from libs.runtime.observability import CORRELATION_HEADER, current_correlation_id
from libs.runtime.problems import PROBLEM_MEDIA_TYPE, ProblemError, ServiceUnavailable
from libs.runtime.telemetry import Telemetry

# An idle pooled connection to a service is dropped after CLIENT_KEEP_ALIVE_S; the services'
# servers keep an idle connection open longer (SERVER_KEEP_ALIVE_S), so a pooled connection is
# never reused just as its server closes it (that race answered a call with a disconnect, a
# 503, now and then under load).
CLIENT_KEEP_ALIVE_S = 30
SERVER_KEEP_ALIVE_S = 75

M = TypeVar("M")
B = TypeVar("B", bound=BaseModel)

# Signed principals kept per client (see ServiceClient._signed); cleared when full.
_TOKENS_MAX = 4096

__all__ = [
    "SERVICE_TOKEN_HEADER",
    "Passthrough",
    "RemoteProblem",
    "ServiceClient",
    "ServiceDirectory",
]


@dataclass(frozen=True)
class Passthrough(Generic[M]):
    """A service's JSON answer kept as the bytes it came in, to be served again as they are:
    parsing it into `model` and serializing it back would cost more than the hop itself.
    `parse()` when the content itself is needed."""

    content: bytes
    model: type[M]

    def parse(self) -> M:
        parsed: M = TypeAdapter(self.model).validate_json(self.content)
        return parsed

    @staticmethod
    def of(value: B) -> Passthrough[B]:
        """A document made here rather than received (e.g. the empty cart of nobody)."""
        return Passthrough(value.model_dump_json().encode(), type(value))


_PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "code", "instance", "errors"})


class RemoteProblem(ProblemError):
    """A problem answered by another service, passed on with its status and code."""


class ServiceClient:
    """A typed, pooled HTTP client for one service."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 5.0,
        service_token: str | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._service_token = service_token
        self._timeout_s = timeout_s
        self._session: Any = None  # aiohttp, created in the running loop on first use
        self._client: httpx.AsyncClient | None = None
        self._tokens: dict[tuple[Any, ...], tuple[str, float]] = {}
        if transport is not None:
            self._client = httpx.AsyncClient(
                base_url=base_url,
                transport=transport,
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            )
        telemetry = telemetry or Telemetry()
        if self._client is not None:
            telemetry.instrument_httpx(self._client, peer=name)
        self._trace_configs = telemetry.aiohttp_trace_configs(peer=name)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        files: Any = None,
        principal: Principal | None = None,
        credential: bool = True,
        redirects: bool = False,
    ) -> httpx.Response:
        """Send a request; errors come back as ProblemError, outages as ServiceUnavailable.

        Only a 2xx is a success, or also a 3xx with `redirects=True` (a page passed through to
        a browser). The service credential goes with every call unless `credential=False`
        (public files); `principal` travels signed (libs/runtime/auth.py)."""
        merged = dict(headers or {})
        if credential and self._service_token:
            merged[SERVICE_TOKEN_HEADER] = self._service_token
            if principal is not None:
                merged[PRINCIPAL_HEADER] = self._signed(principal, self._service_token)
        correlation_id = current_correlation_id()
        if correlation_id:
            merged[CORRELATION_HEADER] = correlation_id
        try:
            if self._client is not None:
                response = await self._client.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers=merged,
                    content=content,
                    files=files,
                )
            else:
                response = await self._send(
                    method, path, json=json, params=params, headers=merged, content=content
                )
        except (httpx.TransportError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable(f"The {self.name} service is unavailable.") from exc
        if not 200 <= response.status_code < (400 if redirects else 300):
            raise self._problem(response)
        return response

    def _signed(self, principal: Principal, key: str) -> str:
        """The principal's signed token, reused for the first half of its lifetime: a shopper's
        requests then carry the same token, which the services verify once (auth.py)."""
        cache_key = (principal.user_id, principal.anonymous_id, tuple(principal.orgs), key)
        now = time.time()
        hit = self._tokens.get(cache_key)
        if hit is not None and now < hit[1]:
            return hit[0]
        token = sign_principal(principal, key=key, now=now)
        if len(self._tokens) >= _TOKENS_MAX:
            self._tokens.clear()
        self._tokens[cache_key] = (token, now + PRINCIPAL_TTL_S / 2)
        return token

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: Any,
        headers: dict[str, str],
        content: bytes | None,
    ) -> httpx.Response:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=CLIENT_KEEP_ALIVE_S),
                timeout=aiohttp.ClientTimeout(total=self._timeout_s, connect=2.0),
                auto_decompress=False,
                trace_configs=self._trace_configs,
            )
        url = self._base_url + path
        try:
            async with self._session.request(
                method,
                url,
                json=json,
                params=params,
                headers=headers,
                data=content,
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                # No `httpx.Request` attached: building one parses the URL again and costs
                # more than the rest of this adapter; nothing reads it back.
                return httpx.Response(
                    answer.status, headers=list(answer.headers.items()), content=body
                )
        except aiohttp.ClientError as exc:
            raise OSError(f"{method} {url}: {exc!r}") from exc

    def _problem(self, response: httpx.Response) -> ProblemError:
        body: dict[str, Any] = {}
        if response.headers.get("content-type", "").startswith(
            (PROBLEM_MEDIA_TYPE, "application/json")
        ):
            try:
                body = response.json()
            except ValueError:
                body = {}
        status = response.status_code
        if status < 400:
            # A service never redirects a call on purpose: a 3xx (or 1xx) means the call did not
            # reach the route it meant, so it is not passed on as an empty success.
            return ServiceUnavailable(
                f"The {self.name} service answered {status}.", code="upstream_error", status=502
            )
        if status >= 500:
            return ServiceUnavailable(
                body.get("detail") or f"The {self.name} service failed to answer.",
                code=body.get("code", "service_unavailable") if status == 503 else "upstream_error",
                status=503 if status == 503 else 502,
            )
        errors = [FieldError.model_validate(e) for e in body.get("errors") or []] or None
        return RemoteProblem(
            body.get("detail"),
            status=status,
            code=body.get("code", f"http_{status}"),
            title=body.get("title", "Error"),
            errors=errors,
            # The figures a service added (e.g. refund_exceeds_paid's paid, refunded, asked).
            extra={k: v for k, v in body.items() if k not in _PROBLEM_FIELDS},
        )

    async def call(self, method: str, path: str, response_model: type[M] | Any, **kwargs: Any) -> M:
        """Send a request and parse the JSON answer into `response_model`."""
        response = await self.request(method, path, **kwargs)
        if isinstance(response_model, type) and issubclass(response_model, BaseModel):
            return response_model.model_validate_json(response.content)  # type: ignore[return-value]
        if isinstance(response_model, TypeAdapter):
            return response_model.validate_json(response.content)
        return TypeAdapter(response_model).validate_json(response.content)

    async def passthrough(
        self, method: str, path: str, response_model: type[M], **kwargs: Any
    ) -> Passthrough[M]:
        """Send a request and keep its JSON answer, said to be a `response_model`, unparsed."""
        response = await self.request(method, path, **kwargs)
        return Passthrough(response.content, response_model)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None


class ServiceDirectory:
    """Where each service is: a URL (distributed) or an in-process app (embedded)."""

    def __init__(
        self,
        *,
        urls: dict[str, str],
        timeout_s: float,
        service_token: str,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._urls = urls
        self._telemetry = telemetry
        self._apps: dict[str, Any] = {}
        self._clients: dict[str, ServiceClient] = {}
        self._timeout_s = timeout_s
        self._service_token = service_token

    def register_app(self, name: str, app: Any) -> None:
        """Serve `name` from an in-process ASGI app instead of the network."""
        self._apps[name] = app

    def client(self, name: str) -> ServiceClient:
        """The shared client of a service, created on first use."""
        if name not in self._clients:
            app = self._apps.get(name)
            transport = (
                httpx.ASGITransport(app=app, raise_app_exceptions=False)
                if app is not None
                else None
            )
            base_url = f"http://{name}.internal" if app is not None else self._urls[name]
            self._clients[name] = ServiceClient(
                name=name,
                base_url=base_url,
                transport=transport,
                timeout_s=self._timeout_s,
                service_token=self._service_token,
                telemetry=self._telemetry,
            )
        return self._clients[name]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
