"""Delivery backends: one small interface, one module per channel.

A backend is a callable `send(message) -> provider_id` that raises `TransientError`
(try again later) or `PermanentError` (never going to work) when it cannot deliver.
"""

from importlib import import_module


class DeliveryError(Exception):
    def __init__(self, message, *, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """Network trouble, timeouts, 5xx, 429: worth another try."""


class PermanentError(DeliveryError):
    """Bad number, no funds, bad credentials: retrying will not help."""


BACKENDS = {
    "file": "notifications.backends.file",
}


def backend_get(channel):
    try:
        path = BACKENDS[channel]
    except KeyError:
        raise PermanentError(f"no backend for channel {channel!r}") from None
    return import_module(path).send
