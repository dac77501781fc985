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


def send(message) -> str:
    message_id = make_msgid(domain="referral-service")
    email = EmailMessage(
        subject=settings.PROJECT_NAME,
        body=message.body,
        to=[address_for(message.recipient)],
        headers={"Message-ID": message_id},
    )
    try:
        email.send(fail_silently=False)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError) as exc:
        raise PermanentError(f"smtp refused: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        # 4xx is "try later" in SMTP, 5xx is final.
        if 400 <= exc.smtp_code < 500:
            raise TransientError(f"smtp {exc.smtp_code}: {exc.smtp_error!r}") from exc
        raise PermanentError(f"smtp {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused connections
        raise TransientError(f"smtp: {exc.__class__.__name__}: {exc}") from exc
    return message_id
