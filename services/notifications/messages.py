"""A notice as an e-mail: subject, plain text and HTML from Jinja2 templates, as one
multipart/alternative message with a Message-ID derived from its event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notifications.domain import Notice, message_id
from services.notifications.texts import translate

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Letterhead:
    """What every message carries besides its notice: who sends it, for which shop."""

    sender: str
    shop_name: str
    shop_url: str | None = None
    reply_to: str | None = None
    message_id_domain: str | None = None

    @property
    def domain(self) -> str:
        """Of the Message-ID: the configured one, else the sender address's domain."""
        if self.message_id_domain:
            return self.message_id_domain
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or "store.localhost"


class MessageRenderer:
    """Renders notices with the templates of `templates/`: autoescaped HTML, plain text."""

    def __init__(self, letterhead: Letterhead, templates: Path = TEMPLATES) -> None:
        self.letterhead = letterhead
        loader = FileSystemLoader(templates)
        self._html = Environment(
            loader=loader,
            autoescape=select_autoescape(["html"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._text = Environment(
            loader=loader,
            autoescape=False,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, notice: Notice) -> Rendered:
        """The subject and both bodies of `notice`, in its locale."""
        t = partial(translate, notice.locale)
        subject = t(f"{notice.kind}.subject", **notice.facts)
        context: dict[str, Any] = {
            **notice.facts,
            "t": t,
            "name": notice.name,
            "locale": notice.locale,
            "subject": subject,
            "shop": self.letterhead.shop_name,
            "shop_url": notice.facts.get("shop_url") or self.letterhead.shop_url,
        }
        text = self._text.get_template(f"{notice.kind}.txt").render(context)
        html = self._html.get_template(f"{notice.kind}.html").render(context)
        return Rendered(subject=subject, text=_tidy(text), html=html)

    def compose(self, notice: Notice, *, now: datetime) -> EmailMessage:
        """The e-mail of `notice`: text and HTML alternatives, headers set."""
        rendered = self.render(notice)
        message = EmailMessage()
        message["From"] = self.letterhead.sender
        message["To"] = notice.recipient
        if self.letterhead.reply_to:
            message["Reply-To"] = self.letterhead.reply_to
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id(
            event_id=notice.event_id, kind=notice.kind, domain=self.letterhead.domain
        )
        message["Auto-Submitted"] = "auto-generated"
        message["X-Store-Event-Id"] = notice.event_id
        message["X-Store-Kind"] = notice.kind
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        # After the bodies: setting content clears the Content-* headers.
        message["Content-Language"] = notice.locale
        return message


def _tidy(text: str) -> str:
    """No runs of blank lines (left where optional parts of a template were empty)."""
    lines: list[str] = []
    for line in text.strip().splitlines():
        line = line if line == "-- " else line.rstrip()  # the signature separator keeps its space
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines) + "\n"
