"""The Telegram backend: Bot API sendMessage to the message's chat (the ops chat, TELEGRAM_CHAT_ID).

The body is Telegram HTML: whoever builds it escapes the values with `html.escape` (see
ops_notify and ops_alert in notifications/services.py). Bodies over 4096 characters go as
several messages, split outside tags and entities, with open tags closed and reopened so each
part parses on its own. If a later part fails transiently, the retry sends every part again.
"""

import re
import time

from django.conf import settings

from . import PermanentError, TransientError
from .http import http_post, json_or_empty, retry_after_s

LIMIT = 4096
_TOKEN = re.compile(r"(<[^>]*>|&#?\w+;)")
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)")


def rate_limit(message):
    """Telegram allows about one message per second per chat."""
    return f"telegram:{_chat_id(message)}", settings.TELEGRAM_RATE_PER_S


def _chat_id(message) -> str:
    return message.recipient or settings.TELEGRAM_CHAT_ID


def html_split(text: str, limit: int = LIMIT) -> list[str]:
    """Split Telegram HTML into parts of at most `limit` characters, each well-formed."""
    parts: list[str] = []
    current = ""
    open_tags: list[tuple[str, str]] = []  # (name, opening tag as written)

    def closing() -> str:
        return "".join(f"</{name}>" for name, _ in reversed(open_tags))

    def flush():
        nonlocal current
        if current.strip():
            parts.append(current + closing())
        current = "".join(tag for _, tag in open_tags)

    for token in _TOKEN.split(text):
        if not token:
            continue
        if _TOKEN.fullmatch(token):  # a tag or an entity: never cut
            if len(current) + len(token) + len(closing()) > limit:
                flush()
            current += token
            tag = _TAG.match(token)
            if tag and tag.group(1):
                for i in range(len(open_tags) - 1, -1, -1):
                    if open_tags[i][0] == tag.group(2).lower():
                        del open_tags[i]
                        break
            elif tag:
                open_tags.append((tag.group(2).lower(), token))
            continue
        while token:
            room = limit - len(current) - len(closing())
            if len(token) <= room:
                current += token
                break
            if room <= 0:
                flush()
                continue
            cut = token.rfind("\n", 0, room) + 1 or room  # prefer a line break
            current += token[:cut]
            token = token[cut:]
            flush()
    if current.strip() and current != "".join(tag for _, tag in open_tags):
        parts.append(current + closing())
    return parts


def _send_part(url: str, chat_id: str, text: str) -> str:
    payload = {"chat_id": chat_id, "text": text, "parse_mode": "HTML", "disable_web_page_preview": True}
    response = http_post(url, json=payload)
    body = json_or_empty(response)
    if response.status_code == 200 and body.get("ok"):
        return str((body.get("result") or {}).get("message_id", ""))
    description = body.get("description") or f"HTTP {response.status_code}"
    if response.status_code == 429 or body.get("error_code") == 429:
        retry_after = (body.get("parameters") or {}).get("retry_after")
        if retry_after is None:
            retry_after = retry_after_s(response)
        raise TransientError(f"telegram 429: {description}", retry_after=retry_after)
    if response.status_code >= 500:
        raise TransientError(f"telegram HTTP {response.status_code}: {description}")
    # 400 chat not found / bad HTML, 401 bad token, 403 bot blocked or kicked.
    raise PermanentError(f"telegram HTTP {response.status_code}: {description}")


def send(message) -> str:
    from notifications.throttle import throttle_wait

    if not settings.TELEGRAM_BOT_TOKEN:
        raise PermanentError("TELEGRAM_BOT_TOKEN is not set")
    chat_id = _chat_id(message)
    if not chat_id:
        raise PermanentError("no chat id: set TELEGRAM_CHAT_ID")
    url = f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage"
    ids = []
    for number, part in enumerate(html_split(message.body)):
        if number:  # the first part's slot was taken before the send; later parts wait their turn
            key, rate = rate_limit(message)
            time.sleep(throttle_wait(key, rate))
        ids.append(_send_part(url, chat_id, part))
    return ",".join(ids)
