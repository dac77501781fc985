"""The webhook backend: POST the row's body (a JSON event, built by whoever enqueued it) to the
row's recipient URL, signed as Stripe signs its webhooks:

    X-Referral-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

keyed by REFERRAL_WEBHOOK_SECRET (the referral programme's events are the only webhooks). The
body never changes between tries, so the event's id is the same on every retry; `t` is the time
of each try. Any answer but a 2xx, or none, is transient: retried with the outbox's backoff.
"""

import hashlib
import hmac
import time

from django.conf import settings

from . import PermanentError, TransientError
from .http import http_post, retry_after_s

SIGNATURE_HEADER = "X-Referral-Signature"


def signature(*, secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def send(message) -> str:
    secret = settings.REFERRAL_WEBHOOK_SECRET
    if not secret:
        raise PermanentError("REFERRAL_WEBHOOK_SECRET is not set")
    body = message.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"{settings.PROJECT_NAME}-webhooks",
        SIGNATURE_HEADER: signature(secret=secret, body=body, timestamp=int(time.time())),
    }
    response = http_post(message.recipient, content=body, headers=headers)
    if 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    raise TransientError(f"webhook: HTTP {response.status_code}", retry_after=retry_after_s(response))
