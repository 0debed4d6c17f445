"""A bounded request head (finding 9): a huge header, or a great many headers, is answered 431
by every process of both modes before it is read in full, and the process goes on serving."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.support.cluster import RunningStore

HEAD_LIMIT = 32768
MAX_HEADERS = 100


def ports(store: RunningStore) -> Iterator[tuple[str, int]]:
    yield from store.ports.items()


def exchange(port: int, head: bytes, *, chunk: int = 65536) -> bytes:
    """Send a request head in chunks (stopping if the server closes) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            for start in range(0, len(head), chunk):
                sock.sendall(head[start : start + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    return answer


def request(*headers: tuple[str, str], path: str = "/healthz") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "host: 127.0.0.1", "connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def assert_431(answer: bytes) -> None:
    assert status_of(answer) == 431, answer[:300]
    problem = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert problem["code"] == "request_head_too_large"


def test_a_head_past_the_limit_is_refused_with_431(store: RunningStore) -> None:
    for _, port in ports(store):
        assert_431(exchange(port, request(("x-padding", "a" * HEAD_LIMIT))))
        assert_431(exchange(port, request(path="/healthz?" + "q" * HEAD_LIMIT)))


def test_more_headers_than_allowed_are_refused_with_431(store: RunningStore) -> None:
    many = [(f"x-h{i}", "1") for i in range(MAX_HEADERS + 1)]
    for _, port in ports(store):
        assert_431(exchange(port, request(*many)))


def test_a_huge_header_is_refused_before_it_is_read_and_the_process_serves_on(
    store: RunningStore,
) -> None:
    """The answer comes while the client is still sending: the server read the limit, not the
    10 MB (a server that reads it all answers only after the whole head arrived)."""
    for _, port in ports(store):
        head = request(("x-padding", "a" * 10_000_000))
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sent = 0
            try:
                while sent < len(head):
                    sent += sock.send(head[sent : sent + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert sent < len(head), "the server took the whole 10 MB head"
        assert status_of(exchange(port, request())) == 200


def test_a_large_but_reasonable_head_is_served(store: RunningStore) -> None:
    cookies = "; ".join(f"c{i}={'v' * 900}" for i in range(20))
    headers = [(f"x-h{i}", "1") for i in range(MAX_HEADERS - 10)]
    for name, port in ports(store):
        answer = exchange(port, request(("cookie", cookies), *headers))
        assert status_of(answer) == 200, (name, answer[:300])


def test_the_limit_applies_to_each_request_of_a_kept_alive_connection(
    store: RunningStore,
) -> None:
    for _, port in ports(store):
        first = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(first)
            answer = sock.recv(65536)
            assert status_of(answer) == 200, answer[:300]
            try:
                sock.sendall(request(("x-padding", "a" * (HEAD_LIMIT * 3))))
            except (BrokenPipeError, ConnectionResetError):
                pytest.fail("the server closed a kept-alive connection early")
            rest = b""
            while data := sock.recv(65536):
                rest += data
        assert_431(rest)
