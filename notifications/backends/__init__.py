"""Delivery backends: one small interface, one module per channel.

A backend module has `send(message) -> provider_id`, which raises `TransientError` (try again
later) or `PermanentError` (never going to work) when it cannot deliver, and may have
`rate_limit(message) -> (key, per_second) | None`, the bucket the message draws from
(notifications/throttle.py).
"""

from importlib import import_module


class DeliveryError(Exception):
    def __init__(self, message, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """Network trouble, timeouts, 5xx, 429: worth another try (after retry_after, if given)."""


class PermanentError(DeliveryError):
    """Bad number, no funds, bad credentials: retrying will not help."""


BACKENDS = {
    "file": "notifications.backends.file",
    "email": "notifications.backends.email",
    "sms": "notifications.backends.sms",
    "telegram": "notifications.backends.telegram",
    "webhook": "notifications.backends.webhook",
}


def backend_get(channel):
    """The backend module for a channel; an unknown channel is a permanent error."""
    try:
        path = BACKENDS[channel]
    except KeyError:
        raise PermanentError(f"no backend for channel {channel!r}") from None
    return import_module(path)
