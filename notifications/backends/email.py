"""The e-mail backend: Django's mail API (SMTP from EMAIL_* settings, console in DEBUG).

A phone recipient goes to <digits>@OTP_EMAIL_DOMAIN (an SMS-over-mail gateway); an address
is used as it is.
"""

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid

from . import PermanentError, TransientError


def address_for(recipient: str) -> str:
    if "@" in recipient:
        return recipient
    digits = "".join(ch for ch in recipient if ch.isdigit())
    return f"{digits}@{settings.OTP_EMAIL_DOMAIN}"


# Where in the SMTP dialogue a refusal came, by the exception smtplib raises for it.
STEPS = [
    (smtplib.SMTPConnectError, "greeting"),
    (smtplib.SMTPHeloError, "EHLO"),
    (smtplib.SMTPAuthenticationError, "AUTH"),
    (smtplib.SMTPSenderRefused, "MAIL FROM"),
    (smtplib.SMTPRecipientsRefused, "RCPT TO"),
    (smtplib.SMTPDataError, "DATA"),
]


def refusal(exc: smtplib.SMTPException) -> tuple[int, str] | None:
    """The server's reply (code, text) inside a refusal, or None for an error without one."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # Raised only when every recipient was refused; a 4xx for any of them is worth a retry.
        replies = sorted(exc.recipients.values(), key=lambda reply: reply[0])
        code, text = replies[0] if replies else (None, b"")
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, exc.smtp_error
    else:
        return None
    if not isinstance(code, int):
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return code, " ".join(str(text).split())


def send(message) -> str:
    """Send through Django's mail API. SMTP's own rule decides what a refusal means (RFC 5321
    4.2.1): a 4xx reply at any step (greeting, EHLO, AUTH, MAIL, RCPT, DATA) is "try again later",
    so a greylisting server's 450 is retried; a 5xx reply is final and fails the message."""
    message_id = make_msgid(domain="referral-service")
    email = EmailMessage(
        subject=settings.PROJECT_NAME,
        body=message.body,
        to=[address_for(message.recipient)],
        headers={"Message-ID": message_id},
    )
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPException as exc:
        reply = refusal(exc)
        if reply is None:  # disconnects, unsupported extensions: no verdict from the server
            raise TransientError(f"smtp: {exc.__class__.__name__}: {exc}") from exc
        code, text = reply
        step = next((name for kind, name in STEPS if isinstance(exc, kind)), "reply")
        error = f"smtp {step}: {code} {text}"
        if 400 <= code < 500:
            raise TransientError(error) from exc
        raise PermanentError(error) from exc
    except OSError as exc:  # refused connections, timeouts, TLS failures
        raise TransientError(f"smtp: {exc.__class__.__name__}: {exc}") from exc
    return message_id
