"""Where the messages go: the SMTP URL read right, the distributed mode refusing no SMTP, and
.eml files written whole."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from libs.runtime.settings import RuntimeSettings
from services.notifications.bootstrap import build_mailer
from services.notifications.mailer import EmlDirectoryMailer, SmtpMailer, SmtpServer
from services.notifications.settings import MailerNotConfigured, NotificationsSettings
from tests.support.services import TEST_SERVICE_TOKEN


@pytest.mark.parametrize(
    ("url", "security", "expected"),
    [
        ("smtp://mail.example", "auto", ("mail.example", 25, None, None, False, None)),
        (
            "smtp://ada%40shop:p%3Ass@mail.example:587",
            "starttls",
            ("mail.example", 587, "ada@shop", "p:ss", False, True),
        ),
        ("smtps://u:p@mail.example", "auto", ("mail.example", 465, "u", "p", True, False)),
        ("smtp://mail.example", "tls", ("mail.example", 465, None, None, True, False)),
        ("smtp://mailcatcher:1025", "none", ("mailcatcher", 1025, None, None, False, False)),
    ],
)
def test_the_smtp_url_names_the_server_credentials_and_tls(
    url: str, security: str, expected: tuple[object, ...]
) -> None:
    server = SmtpServer.from_url(url, security=security)  # type: ignore[arg-type]
    assert (
        server.host,
        server.port,
        server.username,
        server.password,
        server.use_tls,
        server.start_tls,
    ) == expected


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25"])
def test_a_url_that_is_not_smtp_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP URL"):
        SmtpServer.from_url(url)


def test_the_embedded_mode_writes_eml_files_and_the_distributed_mode_needs_smtp(
    tmp_path: Path,
) -> None:
    embedded = NotificationsSettings(runtime=RuntimeSettings(data_dir=tmp_path))
    mailer = build_mailer(embedded)
    assert isinstance(mailer, EmlDirectoryMailer) and mailer.folder == tmp_path / "mail"

    distributed = RuntimeSettings(broker_url="amqp://rabbitmq/", service_token=TEST_SERVICE_TOKEN)
    with pytest.raises(MailerNotConfigured, match="NOTIFICATIONS_SMTP_URL"):
        build_mailer(NotificationsSettings(runtime=distributed))
    smtp = build_mailer(
        NotificationsSettings(runtime=distributed, smtp_url="smtp://mail.example:587")
    )
    assert isinstance(smtp, SmtpMailer) and smtp.server.port == 587


async def test_an_eml_file_is_the_whole_message_named_by_its_message_id(tmp_path: Path) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Message-ID"] = "<0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22.order_paid@shop.example>"
    message["Subject"] = "Bestätigt"
    message.set_content("Hallo\n")
    mailer = EmlDirectoryMailer(tmp_path / "mail")
    await mailer.send(message)
    await mailer.send(message)  # a resent copy replaces the file

    (path,) = (tmp_path / "mail").iterdir()
    assert path.name == "0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22.order_paid@shop.example.eml"
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Bestätigt"
