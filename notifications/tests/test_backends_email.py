"""The e-mail backend against a real SMTP server (aiosmtpd, started by the test on 127.0.0.1),
through the outbox's own delivery path (notifications.services.message_deliver).

SMTP's rule (RFC 5321 4.2.1): a 4xx reply means "not now", a 5xx reply means "never". A 4xx at
any step (the greeting, EHLO, MAIL, RCPT, DATA) puts the row back for a retry; a 5xx fails it
with the server's reason on the row."""

import socket

import pytest
from django.core import mail

from notifications.backends import email
from notifications.models import Message
from notifications.services import message_deliver

from .fakes import BusyGreeter, MailServer, free_port

pytestmark = pytest.mark.postgres


def _message(recipient="+79991234567"):
    return Message(pk=1, channel="email", recipient=recipient, body="Your login code: 1234")


def test_a_phone_goes_to_the_sms_gateway_domain(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.OTP_EMAIL_DOMAIN = "sms.example.org"

    provider_id = email.send(_message())

    (sent,) = mail.outbox
    assert sent.to == ["79991234567@sms.example.org"]
    assert sent.body == "Your login code: 1234"
    assert sent.extra_headers["Message-ID"] == provider_id


def test_an_address_is_used_as_it_is(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    email.send(_message("ops@example.org"))

    assert mail.outbox[0].to == ["ops@example.org"]


@pytest.fixture
def smtp(settings):
    """`smtp(port)`: point Django's SMTP backend at 127.0.0.1:port, no TLS, no login."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.OTP_EMAIL_DOMAIN = "sms.example.org"
    settings.TELEGRAM_ALERTS = False
    started = []

    def point_at(server):
        if isinstance(server, MailServer):
            server.start()
        started.append(server)
        settings.EMAIL_PORT = server.port
        return server

    yield point_at
    for server in started:
        server.stop()


def _deliver(**fields):
    message = Message.objects.create(channel="email", recipient="+79991234567", body="Your login code: 1234", **fields)
    outcome = message_deliver(message_id=message.pk)
    message.refresh_from_db()
    return outcome, message


def test_a_message_is_delivered_to_the_smtp_server(db, smtp):
    server = smtp(MailServer())

    outcome, message = _deliver()

    assert (outcome.status, message.status, message.attempts) == ("sent", "sent", 1)
    (delivered,) = server.delivered
    assert delivered.rcpt_tos == ["79991234567@sms.example.org"]
    assert b"Your login code: 1234" in delivered.content
    assert f"Message-ID: {message.provider_id}".encode() in delivered.content


# Each reply is given twice: smtplib falls back to HELO after a refused EHLO, and tries its next
# AUTH mechanism (PLAIN, then LOGIN) after a refused one.
TRANSIENT = [
    ("EHLO", "421 4.3.2 System not accepting network messages"),
    ("AUTH", "454 4.7.0 Temporary authentication failure"),
    ("MAIL", "451 4.3.0 Mail server temporarily rejected message"),
    ("RCPT", "450 4.2.0 <79991234567@sms.example.org>: Recipient address rejected: Greylisted"),
    ("DATA", "452 4.3.1 Insufficient system storage"),
]
PERMANENT = [
    ("EHLO", "554 5.7.1 Client host rejected: access denied"),
    ("AUTH", "535 5.7.8 Authentication credentials invalid"),
    ("MAIL", "553 5.1.8 Sender address rejected: domain not found"),
    ("RCPT", "550 5.1.1 <79991234567@sms.example.org>: Recipient address rejected: User unknown"),
    ("DATA", "554 5.6.0 Message rejected: content"),
]


@pytest.mark.parametrize(("command", "reply"), TRANSIENT, ids=[c for c, _ in TRANSIENT])
def test_a_4xx_reply_puts_the_message_back_for_a_retry(db, smtp, settings, command, reply):
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = (
        ("mailer", "app-password") if command == "AUTH" else ("", "")
    )
    server = smtp(MailServer(**{command: [reply, reply]}))

    outcome, message = _deliver()

    assert outcome.status == "retry"
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.available_at is not None
    assert reply in message.last_error
    assert server.delivered == []


@pytest.mark.parametrize(("command", "reply"), PERMANENT, ids=[c for c, _ in PERMANENT])
def test_a_5xx_reply_fails_the_message_with_the_servers_reason(db, smtp, settings, command, reply):
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = (
        ("mailer", "app-password") if command == "AUTH" else ("", "")
    )
    server = smtp(MailServer(**{command: [reply, reply]}))

    outcome, message = _deliver()

    assert outcome.status == "failed"
    assert (message.status, message.attempts) == ("failed", 1)
    assert reply in message.last_error
    assert server.delivered == []


def test_a_busy_server_that_answers_the_connection_with_421_is_retried(db, smtp):
    smtp(BusyGreeter())

    outcome, message = _deliver()

    assert (outcome.status, message.status) == ("retry", "pending")
    assert "421 4.3.2 Too many connections" in message.last_error


def test_a_server_that_is_down_is_retried(db, smtp, settings):
    settings.EMAIL_PORT = free_port()  # nothing listens there

    outcome, message = _deliver()

    assert (outcome.status, message.status) == ("retry", "pending")
    assert "ConnectionRefusedError" in message.last_error


def test_a_server_that_never_answers_is_retried_after_the_timeout(db, smtp, settings):
    with socket.socket() as silent:  # accepts the connection (the backlog), never says a word
        silent.bind(("127.0.0.1", free_port()))
        silent.listen()
        settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = silent.getsockname()[1], 1

        outcome, message = _deliver()

    assert (outcome.status, message.status) == ("retry", "pending")
    assert "timed out" in message.last_error
