"""The one seam where delivery leaves the machine over HTTP (SMS providers, Telegram, webhooks).

Network errors and timeouts become TransientError; the caller classifies the answer.
"""

import email.utils
import time

import httpx
from django.conf import settings

from . import TransientError


def http_post(url: str, **kwargs) -> httpx.Response:
    timeout = httpx.Timeout(settings.DELIVERY_HTTP_TIMEOUT_S)
    try:
        return httpx.post(url, timeout=timeout, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientError(f"timeout: {exc.__class__.__name__}") from exc
    except httpx.HTTPError as exc:  # connection refused, reset, DNS, protocol errors
        raise TransientError(f"network error: {exc.__class__.__name__}: {exc}") from exc


def retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After in seconds (both forms: delta-seconds and an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def json_or_empty(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
