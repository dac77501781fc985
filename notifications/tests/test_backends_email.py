import smtplib

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from notifications.backends import PermanentError, TransientError, email
from notifications.models import Message


class RefusingBackend(BaseEmailBackend):
    """Stands in for an SMTP server that answers with `error` (set by the test)."""

    error: Exception

    def send_messages(self, messages):
        raise RefusingBackend.error


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


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (smtplib.SMTPRecipientsRefused({"x@y": (550, b"no such user")}), PermanentError),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), PermanentError),
        (smtplib.SMTPDataError(554, b"rejected"), PermanentError),
        (smtplib.SMTPDataError(451, b"try again later"), TransientError),
        (smtplib.SMTPServerDisconnected("gone"), TransientError),
        (ConnectionRefusedError(111, "refused"), TransientError),
        (TimeoutError("timed out"), TransientError),
    ],
)
def test_smtp_answers_are_classified(settings, error, kind):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    RefusingBackend.error = error

    with pytest.raises(kind):
        email.send(_message())
