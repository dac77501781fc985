"""End to end: a real Celery worker on Redis delivers e-mail outbox rows to a real SMTP server
(aiosmtpd, started by the test on 127.0.0.1): delivered; greylisted, then delivered on the retry;
refused for good, with the server's reason on the row; and a server that is down, then up."""

import pytest

from notifications.services import message_enqueue
from tests.utils import wait_for

from .fakes import MailServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

PHONE = "+79991234567"
GATEWAY_ADDRESS = "79991234567@sms.example.org"


@pytest.fixture
def mail_worker(celery_start, settings):
    """`mail_worker(port)`: a worker whose SMTP server is 127.0.0.1:port."""
    from project.celery import app

    app.control.purge()
    settings.TELEGRAM_ALERTS = False

    def start(port):
        return celery_start(
            "worker",
            env={
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(port),
                "EMAIL_USE_TLS": "0",
                "EMAIL_TIMEOUT": "5",
                "OTP_EMAIL_DOMAIN": "sms.example.org",
                "TELEGRAM_ALERTS": "0",
                "OUTBOX_RETRY_BASE_S": "0.2",
            },
        )

    return start


@pytest.fixture
def mail_server():
    servers = []

    def start(**kwargs):
        server = MailServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _done(message):
    message.refresh_from_db()
    return message.status in ("sent", "failed")


def _enqueue():
    return message_enqueue(channel="email", recipient=PHONE, body="Your login code: 1234", sensitive=True)


def test_a_login_code_is_delivered_by_smtp(mail_server, mail_worker):
    server = mail_server()
    mail_worker(server.port)

    message = _enqueue()

    wait_for(lambda: _done(message), timeout=20)
    assert (message.status, message.attempts, message.last_error) == ("sent", 1, "")
    (delivered,) = server.delivered
    assert delivered.rcpt_tos == [GATEWAY_ADDRESS]
    assert b"Your login code: 1234" in delivered.content
    assert f"Message-ID: {message.provider_id}".encode() in delivered.content


def test_a_greylisting_server_gets_the_message_on_the_retry(mail_server, mail_worker):
    server = mail_server(RCPT=["450 4.2.0 <79991234567@sms.example.org>: Recipient address rejected: Greylisted"])
    mail_worker(server.port)

    message = _enqueue()

    wait_for(lambda: _done(message), timeout=20)
    assert (message.status, message.attempts, message.last_error) == ("sent", 2, "")
    assert server.commands.count("RCPT") == 2
    (delivered,) = server.delivered
    assert delivered.rcpt_tos == [GATEWAY_ADDRESS]


def test_a_refusing_server_fails_the_message_at_once_with_its_reason(mail_server, mail_worker):
    reason = "550 5.1.1 <79991234567@sms.example.org>: Recipient address rejected: User unknown"
    server = mail_server(RCPT=[reason] * 10)
    mail_worker(server.port)

    message = _enqueue()

    wait_for(lambda: _done(message), timeout=20)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error == f"smtp RCPT TO: {reason}"
    assert server.commands.count("RCPT") == 1
    assert server.delivered == []
    assert message.body == "[redacted after delivery]"


def test_a_server_that_is_down_gets_the_message_once_it_is_up(mail_server, mail_worker):
    port = free_port()
    mail_worker(port)

    message = _enqueue()

    def refused_once():
        message.refresh_from_db()
        return message.attempts >= 1 and "ConnectionRefusedError" in message.last_error

    wait_for(refused_once, timeout=20)
    assert message.status in ("pending", "sending")
    server = mail_server(port=port)
    wait_for(lambda: _done(message), timeout=30)
    assert message.status == "sent"
    assert message.attempts >= 2
    (delivered,) = server.delivered
    assert delivered.rcpt_tos == [GATEWAY_ADDRESS]
