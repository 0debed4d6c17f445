"""Settings of the notifications service (`NOTIFICATIONS_*`); the defaults are the embedded mode."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.runtime.settings import RuntimeSettings

SmtpSecurity = Literal["auto", "starttls", "tls", "none"]


class MailerNotConfigured(ValueError):
    """Notifications cannot start: no way to send e-mail is configured."""


class NotificationsSettings(BaseSettings):
    """Where the shopper's e-mails go and how they are signed."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the notifications database; default a SQLite file in "
        "data_dir.",
    )
    database_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Pooled connections of one notifications process; default "
        "`STORE_DB_POOL_SIZE`.",
    )
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    smtp_url: str | None = Field(
        default=None,
        description="`smtp://user:password@host:port` (or `smtps://` for TLS from the first "
        "byte). Unset: messages are written as .eml files to `mail_dir` (embedded mode only; "
        "the distributed mode refuses to start without it).",
    )
    smtp_security: SmtpSecurity = Field(
        default="auto",
        description="`auto` (STARTTLS when the server offers it; TLS for `smtps://`), "
        "`starttls` (required), `tls` (implicit TLS) or `none` (plain text, a local catcher).",
    )
    smtp_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of one SMTP conversation."
    )
    smtp_validate_certs: bool = Field(
        default=True, description="Verify the SMTP server's TLS certificate."
    )
    mail_dir: Path | None = Field(
        default=None,
        description="Where .eml files are written when no SMTP server is configured; default "
        "`mail/` in the data folder.",
    )
    sender: str = Field(
        default="Store <shop@store.localhost>",
        min_length=3,
        description="The From address of every message.",
    )
    reply_to: str | None = Field(default=None, description="A Reply-To address, if any.")
    shop_name: str = Field(default="Store", min_length=1, description="The shop's name in mails.")
    shop_url: str | None = Field(
        default=None,
        description="The storefront's address, linked from the messages (e.g. "
        "`https://shop.example/shop/`); unset: the messages link to no shop page.",
    )
    message_id_domain: str | None = Field(
        default=None,
        description="Domain of the Message-ID headers; default the sender address's domain.",
    )

    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file."""
        return self.database_url or self.runtime.sqlite_url("notifications")

    def resolved_mail_dir(self) -> Path:
        """The folder of .eml files."""
        return self.mail_dir or self.runtime.data_dir / "mail"

    def check_mailer(self) -> None:
        """Refuse to run the distributed mode with mail written to a local folder."""
        if self.smtp_url is None and not self.runtime.embedded:
            raise MailerNotConfigured(
                "Set NOTIFICATIONS_SMTP_URL (e.g. smtp://user:password@mail.example:587): the "
                "distributed mode sends the shopper's e-mails over SMTP."
            )
