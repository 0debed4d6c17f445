"""Wiring of the notifications service: settings in, ready-made dependencies out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime.runtime import Runtime, Shared
from services.notifications.handlers import HANDLERS
from services.notifications.mailer import EmlDirectoryMailer, Mailer, SmtpMailer, SmtpServer
from services.notifications.messages import Letterhead, MessageRenderer
from services.notifications.orders import OrdersServiceSource, OrdersSource
from services.notifications.service import NotificationsService
from services.notifications.settings import NotificationsSettings
from services.notifications.tables import metadata


@dataclass(frozen=True)
class NotificationsDeps:
    settings: NotificationsSettings
    runtime: Runtime
    service: NotificationsService
    mailer: Mailer


def build_mailer(settings: NotificationsSettings) -> Mailer:
    """SMTP when a server is configured, else .eml files in the mail folder (embedded)."""
    settings.check_mailer()
    if settings.smtp_url is None:
        return EmlDirectoryMailer(settings.resolved_mail_dir())
    return SmtpMailer(
        SmtpServer.from_url(settings.smtp_url, security=settings.smtp_security),
        timeout_s=settings.smtp_timeout_s,
        validate_certs=settings.smtp_validate_certs,
    )


def build_deps(
    settings: NotificationsSettings,
    shared: Shared,
    *,
    mailer: Mailer | None = None,
    orders: OrdersSource | None = None,
) -> NotificationsDeps:
    """The runtime and service; `mailer` and `orders` replace the real adapters (tests)."""
    runtime = Runtime.for_service(
        name="notifications",
        settings=settings,
        metadata=metadata,
        migrations_dir=Path(__file__).parent / "migrations",
        shared=shared,
    )
    mailer = mailer or build_mailer(settings)
    service = NotificationsService(
        runtime=runtime,
        mailer=mailer,
        renderer=MessageRenderer(
            Letterhead(
                sender=settings.sender,
                shop_name=settings.shop_name,
                shop_url=settings.shop_url,
                reply_to=settings.reply_to,
                message_id_domain=settings.message_id_domain,
            )
        ),
        orders=orders or OrdersServiceSource(lambda: runtime.client("orders")),
    )
    runtime.subscribe(service, HANDLERS)
    return NotificationsDeps(settings=settings, runtime=runtime, service=service, mailer=mailer)
