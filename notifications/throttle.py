"""Per-backend rate limits shared by every worker: a GCRA ("virtual scheduling") bucket in Redis.

Why not Celery's `rate_limit`: it counts per worker process and per task type, while one task
type carries every channel, and the limits are per backend and per chat (Telegram: about
1 message/s per chat; an SMS provider: per account). One Redis key per bucket holds the
earliest time the next message may go; a Lua script reserves slots atomically, using Redis's
clock so workers on several hosts agree.
Used by notifications.services.message_deliver and the Telegram backend (multi-part messages).
"""

import logging
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: interval (s), max wait (s). Returns {reserved 0/1, wait seconds as text}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now, tat)
local wait = start - now
if wait > max_wait then
  return {0, tostring(wait)}
end
redis.call('SET', KEYS[1], tostring(start + interval), 'PX', math.ceil((wait + interval) * 1000) + 1000)
return {1, tostring(wait)}
"""


@cache
def _client():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=2)


def throttle_reserve(key: str, per_second: float, *, max_wait: float) -> tuple[bool, float]:
    """Reserve the next slot of bucket `key` if it comes within `max_wait` seconds.

    Returns (reserved, wait): sleep `wait` then send; or, not reserved, come back in `wait`.
    Without Redis (the embedded mode) or with a broken Redis there is no limit: failing open
    keeps messages flowing, and a worker without Redis gets no tasks anyway.
    """
    if per_second <= 0 or not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return True, 0.0
    try:
        reserved, wait = _client().eval(_RESERVE, 1, f"throttle:{key}", 1.0 / per_second, max_wait)
    except redis.RedisError as exc:
        logger.warning("rate limit %s not applied: %s", key, exc)
        return True, 0.0
    return bool(reserved), float(wait)


def throttle_wait(key: str, per_second: float) -> float:
    """Reserve the next slot whenever it is; returns how long to sleep."""
    return throttle_reserve(key, per_second, max_wait=1e9)[1]
