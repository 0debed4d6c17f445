"""The `Mailer` port and its adapters: `SmtpMailer` (any SMTP server) and
`EmlDirectoryMailer` (the embedded mode: one .eml file per message in a folder)."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from services.notifications.settings import SmtpSecurity


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Return once the message was accepted for delivery; raise if it was not."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to reach an SMTP server, from `smtp://user:password@host:port`."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: when the server offers it

    @classmethod
    def from_url(cls, url: str, *, security: SmtpSecurity = "auto") -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("an SMTP URL is smtp://[user:password@]host[:port] or smtps://…")
        implicit = security == "tls" or (security == "auto" and parts.scheme == "smtps")
        start_tls = {"starttls": True, "none": False}.get(security)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 587 if security == "starttls" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=False if implicit else start_tls,
        )


class SmtpMailer:
    """Sends each message in its own SMTP conversation (no connection to keep healthy)."""

    def __init__(
        self, server: SmtpServer, *, timeout_s: float = 10.0, validate_certs: bool = True
    ) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self.validate_certs = validate_certs

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.server.host,
            port=self.server.port,
            username=self.server.username,
            password=self.server.password,
            use_tls=self.server.use_tls,
            start_tls=self.server.start_tls,
            validate_certs=self.validate_certs,
            timeout=self.timeout_s,
        )

    async def aclose(self) -> None:
        return None


class EmlDirectoryMailer:
    """Writes each message to `<folder>/<Message-ID>.eml` (the embedded mode)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, message: EmailMessage) -> Path:
        name = re.sub(r"[^A-Za-z0-9._@-]", "_", str(message["Message-ID"]).strip().strip("<>"))
        return self.folder / f"{name}.eml"

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_of(message)
        # Written aside then renamed: a reader never sees half a message.
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)

    async def aclose(self) -> None:
        return None
