"""The HTTP server protocol every process serves with: uvicorn's httptools protocol with a
bounded request head.

httptools accepts a request head of any size and builds each header by concatenation, so one
request with a 100 MB header costs quadratic time on the event loop and stalls every other
request of the process. Here the head (request line and headers) is fed to the parser at most
`STORE_HTTP_HEAD_LIMIT_BYTES` at a time: a head that has not ended within that many bytes, or
that has more than `STORE_HTTP_MAX_HEADERS` headers, is answered 431 and the connection is
closed, before the parser sees a byte more. Bytes are counted per read from the socket: when
requests are pipelined, the bytes of a read that ended one request and began the next count
towards the next one's head.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from libs.runtime.problems import PROBLEM_MEDIA_TYPE, ProblemError
from libs.runtime.settings import RuntimeSettings

# After a 431, how long and how much of what the client still sends is read and dropped.
LINGER_S = 1.0
LINGER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class HeadLimits:
    bytes: int
    headers: int


@functools.cache
def head_limits() -> HeadLimits:
    """The limits of this process, read once from its settings (every worker reads the same)."""
    settings = RuntimeSettings()
    return HeadLimits(bytes=settings.http_head_limit_bytes, headers=settings.http_max_headers)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head past its limit."""


class RequestHeadTooLarge(ProblemError):
    status, code, title = 431, "request_head_too_large", "Request header fields too large"


def _too_large_response(limits: HeadLimits) -> bytes:
    """The whole 431 answer, written straight to the socket (no app has seen the request)."""
    detail = (
        f"The request line and headers may take {limits.bytes} bytes and {limits.headers} headers."
    )
    body = RequestHeadTooLarge(detail).to_problem().model_dump_json(exclude_none=True).encode()
    head = (
        f"content-type: {PROBLEM_MEDIA_TYPE}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return STATUS_LINE[431] + head.encode("ascii") + body


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; the head of each request is bounded (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = head_limits()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._lingering: int | None = None

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering -= len(data)
            if self._lingering <= 0:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        view = memoryview(data)
        try:
            while view:
                room = self._limits.bytes - self._head_bytes if self._in_head else len(view)
                if room <= 0:
                    raise _HeadTooLarge
                piece, view = view[:room], view[room:]
                was_in_head = self._in_head
                self.parser.feed_data(piece)
                if was_in_head and self._in_head:
                    self._head_bytes += len(piece)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse_head()
            else:
                self._invalid()
        except _HeadTooLarge:
            self._refuse_head()
        except httptools.HttpParserError:
            self._invalid()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _refuse_head(self) -> None:
        """Answer 431, then close gracefully: what the client is still sending is read and
        dropped for a moment (at most LINGER_S and LINGER_BYTES), because closing a socket with
        unread bytes resets the connection, and the reset can destroy the answer before the
        client reads it."""
        self.logger.warning("Request head over its limit: refused with 431.")
        self.transport.write(_too_large_response(self._limits))
        self._lingering = LINGER_BYTES
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, self.transport.close)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.headers:
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # What follows on a kept-alive connection is the next request's head.
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()
