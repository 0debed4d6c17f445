"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): keeps what it receives, and can go
down and come back on the same port."""

from __future__ import annotations

import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from tests.support.cluster import free_port


class _Keep:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: SmtpEnvelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.catcher.lock:
            self.catcher.received.append(parsed)
        return "250 OK"


class MailCatcher:
    """`smtp_url` points at it while it is up; `received` holds every accepted message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[EmailMessage] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def smtp_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.received)

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
