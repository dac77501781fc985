"""A receiver's check of a referral webhook (README, "Referral programme"; tested by
referrals/tests/test_webhooks.py against real deliveries). Standard library only."""

import hashlib
import hmac
import json
import time


def webhook_verify(secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now=None) -> dict:
    """The event of a delivery whose X-Referral-Signature `header` is right for the raw `body`
    and no older than `tolerance_s`; ValueError otherwise. Drop repeats by the event's "id"."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        raise ValueError("no timestamp in the signature header") from None
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        raise ValueError("wrong signature")
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise ValueError("timestamp too old (a replay?)")
    return json.loads(body)
