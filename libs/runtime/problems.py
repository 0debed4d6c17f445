"""Errors as `application/problem+json` (RFC 9457), the same in every app.

Domain code raises `ProblemError` subclasses (or its own errors mapped onto them); the
handlers installed by `install_problem_handlers` turn every failure — validation, unknown
route, a backing service down, an unexpected bug — into a problem document, never a stack trace.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Scope, Send

from libs.contracts.common import FieldError, Problem

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://store.example/problems/"


class ProblemError(Exception):
    """An error with an HTTP status and a stable code; subclasses set the defaults."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.errors = errors
        self.extra = extra or {}
        self.headers: dict[str, str] | None = None  # e.g. Retry-After of a 429

    def to_problem(self, instance: str | None = None) -> Problem:
        return Problem(
            type=PROBLEM_TYPE_BASE + self.code,
            title=self.title,
            status=self.status,
            detail=self.detail,
            code=self.code,
            instance=instance,
            errors=self.errors,
        )


class InvalidInput(ProblemError):
    status, code, title = 422, "validation_error", "The request is not valid"

    @classmethod
    def for_field(cls, field: str, message: str, *, code: str = "validation_error") -> InvalidInput:
        return cls(
            f"{field}: {message}", code=code, errors=[FieldError(field=field, message=message)]
        )


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"


class ServiceUnavailable(ProblemError):
    status, code, title = 503, "service_unavailable", "A backing service is unavailable"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


async def send_problem(scope: Scope, send: Send, error: ProblemError) -> None:
    """Answer with `error` from ASGI middleware, before or outside any route: the same
    document the app's handlers write."""

    async def nothing_to_receive() -> Message:
        return {"type": "http.disconnect"}

    await problem_response(error.to_problem(), error.headers)(scope, nothing_to_receive, send)


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        field = ".".join(location) or "body"
        errors.append(FieldError(field=field, message=str(error.get("msg", "invalid"))))
    return errors


# Failures of infrastructure we depend on: a database, Redis, the broker, another service.
_UNAVAILABLE_NAMES = {
    "OperationalError",
    "InterfaceError",
    "ConnectionError",
    "ConnectionRefusedError",
    "TimeoutError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "PoolTimeout",
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "BusyLoadingError",
    "AMQPConnectionError",
}


# SQLSTATE classes of a database that cannot serve now: connection exception, insufficient
# resources (e.g. too many clients), operator intervention (shutting down, starting up).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def is_unavailable_error(exc: BaseException) -> bool:
    """True when the error means something we depend on is unreachable or overloaded."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in _UNAVAILABLE_NAMES or isinstance(current, OSError):
            return True
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_data_error(exc: BaseException) -> bool:
    """True when the database refused a value itself (SQLSTATE class 22: data exception),
    e.g. a NUL character in text, which PostgreSQL cannot store: the caller's input is bad."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
        current = current.__cause__ or current.__context__
    return False


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error an app can raise onto a problem+json response."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        problem = exc.to_problem(instance=request.url.path)
        body = problem.model_dump(exclude_none=True)
        body.update(exc.extra)
        return JSONResponse(
            body, status_code=exc.status, media_type=PROBLEM_MEDIA_TYPE, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        return problem_response(
            InvalidInput(detail, errors=errors).to_problem(instance=request.url.path)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            403: "forbidden",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, f"http_{exc.status_code}")
        problem = Problem(
            type=PROBLEM_TYPE_BASE + code,
            title=str(exc.detail) if exc.detail else "HTTP error",
            status=exc.status_code,
            detail=str(exc.detail) if exc.detail else None,
            code=code,
            instance=request.url.path,
        )
        return problem_response(problem, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_data_error(exc):
            invalid = InvalidInput(
                "The request holds a value the store cannot keep (e.g. a NUL character).",
                code="invalid_characters",
            )
            return problem_response(invalid.to_problem(instance=request.url.path))
        if is_unavailable_error(exc):
            log.warning("request.dependency_unavailable", path=request.url.path, error=repr(exc))
            error: ProblemError = ServiceUnavailable(
                "A service this request needs is unavailable; try again shortly."
            )
            return problem_response(
                error.to_problem(instance=request.url.path), headers={"Retry-After": "1"}
            )
        log.error("request.unexpected_error", path=request.url.path, exc_info=exc)
        error = ProblemError(
            "An unexpected error occurred.",
            status=500,
            code="internal_error",
            title="Internal server error",
        )
        return problem_response(error.to_problem(instance=request.url.path))
