"""The fraud guard: what stands between a code request and an SMS pumping bill (issue 20).

code_request (accounts.services) runs it on every door, in this order:
1. the number (no database): its country (OTP_ALLOWED_REGIONS) and kind (OTP_ALLOWED_NUMBER_TYPES);
2. in the limits' one constant statement: the active conversion blocks of its country and prefix,
   and whether an allow-list entry covers it (then 3 to 5 are skipped);
3. prefix velocity and 4. the SMS budget: counter rows per clock window, counted by one
   conditional upsert (guard_count) in the code's transaction, so parallel requests cannot pass a cap;
5. the conversion watch (guard_watch, a beat job) writes the blocks that 2 reads.
Alerts go to the ops chat through the outbox (notifications.services.ops_guard_alert).
"""

import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from notifications.services import ops_guard_alert
from project.exceptions import ApplicationError, RateLimited, ServiceUnavailable

from .models import CodeRefusal, GuardAllow, GuardBlock, GuardCounter, PhoneCode
from .phones import phone_kind, phone_normalize

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# The budget's first alert, as a share of either window's cap (the second is at 100 %).
BUDGET_ALERT_SHARE = 0.8
# Counter windows older than this are deleted by the watch.
COUNTERS_KEPT = timedelta(days=2)

COUNTRY_REFUSED = "We cannot send codes to this country."
TYPE_REFUSED = "We cannot send codes to this kind of number."
PREFIX_REFUSED = "Too many codes to numbers like this one. Try again later."
BLOCK_REFUSED = "Codes to numbers like this one are paused. Try again later."
BUDGET_REFUSED = "We cannot send more codes right now. Try again later."


def phone_prefix(phone: str) -> str:
    """The E.164 number without its last OTP_PREFIX_FREE_DIGITS digits: one pumped range."""
    digits = settings.OTP_PREFIX_FREE_DIGITS
    return phone[: len(phone) - digits] if digits else phone


def phone_heads(phone: str) -> list[str]:
    """Every leading part of an E.164 number, "+7" to the whole: what a prefix entry may be."""
    return [phone[:end] for end in range(2, len(phone) + 1)]


def guard_number_check(*, phone: str) -> str:
    """The country of `phone` (E.164) when codes may go to it; ApplicationError on `phone` for a
    country outside OTP_ALLOWED_REGIONS or a kind of number outside OTP_ALLOWED_NUMBER_TYPES
    (premium-rate, toll-free, shared-cost... cannot receive a text or cost the sender)."""
    country, kind = phone_kind(phone)
    allowed = settings.OTP_ALLOWED_REGIONS
    if "*" not in allowed and country not in allowed:
        raise ApplicationError(COUNTRY_REFUSED, field="phone", reason="region")
    if kind not in settings.OTP_ALLOWED_NUMBER_TYPES:
        raise ApplicationError(TYPE_REFUSED, field="phone", reason="number_type")
    return country


# The guard's part of the limits statement (accounts.services._LIMITS_SQL): the active blocks of
# the country and prefix (each its end), and whether the allow-list covers the request (a prefix
# entry covers every number that starts with it: the phone's heads are all its leading parts, so
# the entries are found by the unique index however many there are).
GUARD_READ_SQL = f"""
UNION ALL
SELECT 'block', scope = '{GuardBlock.COUNTRY}', until FROM {GuardBlock._meta.db_table}
WHERE until > %(now)s AND ((scope = '{GuardBlock.COUNTRY}' AND key = %(country)s)
    OR (scope = '{GuardBlock.PREFIX}' AND key = %(prefix)s))
UNION ALL
(SELECT 'allow', true, NULL::timestamptz FROM {GuardAllow._meta.db_table}
WHERE (kind = 'phone' AND value = %(phone)s) OR (kind = 'prefix' AND value = ANY(%(heads)s))
    OR (kind = 'country' AND value = %(country)s) OR (kind = 'address' AND value IN (%(ip)s, %(key)s))
LIMIT 1)
"""


def guard_block_refusal(blocks, *, now) -> RateLimited | None:
    """The 429 for the latest-ending of the active blocks read (`until` values), None if none."""
    if not blocks:
        return None
    return RateLimited(BLOCK_REFUSED, retry_after=(max(blocks) - now).total_seconds(), reason="conversion_block")


def _window_start(now, size: timedelta) -> datetime:
    now = now.astimezone(UTC)
    if size == DAY:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(minute=0, second=0, microsecond=0)


# One conditional upsert for the request's windows: each row gains one while under its cap and
# comes back with its new count; a row at its cap is left as it is and does not come back. The
# rows are locked in one order (prefix, SMS hour, SMS day) until the code's transaction ends, so
# a parallel request waits and then sees the count this one left.
_COUNT_SQL = f"""
INSERT INTO {GuardCounter._meta.db_table} AS c (scope, key, start, count) VALUES {{rows}}
ON CONFLICT (scope, key, start) DO UPDATE SET count = c.count + 1
WHERE c.count < CASE c.scope WHEN '{GuardCounter.PREFIX_HOUR}' THEN %(prefix_cap)s
    WHEN '{GuardCounter.SMS_HOUR}' THEN %(hour_cap)s ELSE %(day_cap)s END
RETURNING scope, count
"""


def guard_count(*, prefix: str, sms: bool, now) -> None:
    """Count one code against its prefix's hourly cap (OTP_SENDS_PER_PREFIX_PER_HOUR) and, when it
    goes by SMS, against the service's budget (OTP_SMS_BUDGET_PER_HOUR, OTP_SMS_BUDGET_PER_DAY).

    Runs inside the code's transaction (its rollback undoes the counts). A full prefix raises a
    429, a spent budget a 503, each with Retry-After at the end of its window. The code that
    reaches 80 % of a budget window, and the one that uses its last code, queue one ops alert
    each: exactly one request sees each count, so each alert goes once per window."""
    windows = [(GuardCounter.PREFIX_HOUR, prefix, HOUR)]
    if sms:
        windows += [(GuardCounter.SMS_HOUR, "", HOUR), (GuardCounter.SMS_DAY, "", DAY)]
    starts = {scope: _window_start(now, size) for scope, _, size in windows}
    params = {
        "prefix_cap": settings.OTP_SENDS_PER_PREFIX_PER_HOUR,
        "hour_cap": settings.OTP_SMS_BUDGET_PER_HOUR,
        "day_cap": settings.OTP_SMS_BUDGET_PER_DAY,
    }
    rows = []
    for index, (scope, key, _) in enumerate(windows):
        params.update({f"scope{index}": scope, f"key{index}": key, f"start{index}": starts[scope]})
        rows.append(f"(%(scope{index})s, %(key{index})s, %(start{index})s, 1)")
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL.format(rows=", ".join(rows)), params)
        counts = dict(cursor.fetchall())

    sizes = {scope: size for scope, _, size in windows}
    full = [scope for scope, _, _ in windows if scope not in counts]
    if full:
        wait = max((starts[scope] + sizes[scope] - now).total_seconds() for scope in full)
        if GuardCounter.PREFIX_HOUR in full and len(full) == 1:
            raise RateLimited(PREFIX_REFUSED, retry_after=wait, reason="prefix_velocity")
        budget = GuardCounter.SMS_DAY if GuardCounter.SMS_DAY in full else GuardCounter.SMS_HOUR
        reason = "budget_day" if budget == GuardCounter.SMS_DAY else "budget_hour"
        raise ServiceUnavailable(BUDGET_REFUSED, retry_after=wait, reason=reason)
    for scope, label, cap in (
        (GuardCounter.SMS_HOUR, "hourly", settings.OTP_SMS_BUDGET_PER_HOUR),
        (GuardCounter.SMS_DAY, "daily", settings.OTP_SMS_BUDGET_PER_DAY),
    ):
        count = counts.get(scope)
        if count is None:
            continue
        ends = starts[scope] + sizes[scope]
        if count == cap:
            ops_guard_alert(
                title=f"SMS budget spent: {label}",
                lines=[f"{count} of {cap} codes by SMS.", f"New codes are refused until {ends:%Y-%m-%d %H:%M} UTC."],
            )
        elif count == math.ceil(cap * BUDGET_ALERT_SHARE):
            ops_guard_alert(
                title=f"SMS budget at {round(100 * count / cap)} %: {label}",
                lines=[f"{count} of {cap} codes by SMS; the window ends {ends:%Y-%m-%d %H:%M} UTC."],
            )


# The conversion watch in one statement: the last hour's settled codes (used, or expired unused:
# a code still waiting for its owner is neither), per country and per prefix; where enough were
# issued and too few used, and no allow-list entry covers it, a block for an hour. A block still
# running is left alone; one that ended is renewed. RETURNING gives the new blocks (to alert).
_WATCH_SQL = f"""
WITH settled AS (
    SELECT country, prefix, consumed_at IS NOT NULL AS used FROM {PhoneCode._meta.db_table}
    WHERE created_at > %(since)s AND prefix <> '' AND (consumed_at IS NOT NULL OR expires_at <= %(now)s)
), grouped AS (
    SELECT '{GuardBlock.COUNTRY}' AS scope, country AS key, count(*) AS issued, count(*) FILTER (WHERE used) AS used
    FROM settled GROUP BY country
    UNION ALL
    SELECT '{GuardBlock.PREFIX}', prefix, count(*), count(*) FILTER (WHERE used) FROM settled GROUP BY prefix
)
INSERT INTO {GuardBlock._meta.db_table} AS b (scope, key, issued, used, created_at, until)
SELECT scope, key, issued, used, %(now)s, %(until)s FROM grouped
WHERE issued >= %(min_codes)s AND used < %(min_rate)s * issued
    AND NOT EXISTS (SELECT FROM {GuardAllow._meta.db_table} AS a WHERE a.kind = grouped.scope
        AND (a.value = grouped.key OR (a.kind = 'prefix' AND starts_with(grouped.key, a.value))))
ON CONFLICT (scope, key) DO UPDATE SET issued = EXCLUDED.issued, used = EXCLUDED.used,
    created_at = EXCLUDED.created_at, until = EXCLUDED.until
WHERE b.until <= %(now)s
RETURNING scope, key, issued, used
"""


def guard_watch(*, now) -> list[tuple[str, str, int, int]]:
    """The conversion watch (OTP_CONVERSION_MIN_CODES, OTP_CONVERSION_MIN_RATE): block for an
    hour each country and prefix whose codes of the last hour were rarely entered, alert the ops
    chat once per new block, and delete counter windows nobody reads any more. Returns the new
    blocks as (scope, key, issued, used). Used by the beat job guard_watch_task."""
    params = {
        "since": now - HOUR,
        "now": now,
        "until": now + HOUR,
        "min_codes": settings.OTP_CONVERSION_MIN_CODES,
        "min_rate": settings.OTP_CONVERSION_MIN_RATE,
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_WATCH_SQL, params)
            blocks = cursor.fetchall()
        if blocks:
            ops_guard_alert(
                title="Codes paused: rarely entered",
                lines=[
                    *(f"{s} {k}: {used} of {issued} used in the last hour." for s, k, issued, used in blocks),
                    f"No codes to them until {now + HOUR:%Y-%m-%d %H:%M} UTC.",
                ],
            )
    GuardCounter.objects.filter(start__lt=now - COUNTERS_KEPT).delete()
    return blocks


def code_refusal_record(*, refusal: ApplicationError, phone: str, key: str, country: str, prefix: str, now) -> None:
    """The one place every refusal of code_request passes (metrics hook in here too): a rule's
    refusal (one with a reason) becomes a CodeRefusal row. Called after the refused request's
    transaction is rolled back, so the record stays."""
    if not refusal.reason:
        return  # malformed input, not a rule's refusal
    CodeRefusal.objects.create(
        phone=phone[:32], ip_key=key, country=country, prefix=prefix, reason=refusal.reason, created_at=now
    )


def guard_allow_value(*, kind: str, value: str) -> str:
    """The allow-list value as the guard compares it: a phone in E.164, a prefix as "+" and
    digits, a country as its upper-case ISO code, an address as typed (the limits' key: an IPv4
    address or an IPv6 network like 2001:db8::/64). ApplicationError on `value` otherwise."""
    value = (value or "").strip()
    if kind == GuardAllow.Kind.PHONE:
        return phone_normalize(value, field="value")
    if kind == GuardAllow.Kind.PREFIX:
        digits = value.removeprefix("+")
        if not (digits.isascii() and digits.isdigit() and 1 <= len(digits) <= 15):
            raise ApplicationError('Enter a prefix as "+" and digits, e.g. +7999123.', field="value")
        return "+" + digits
    if kind == GuardAllow.Kind.COUNTRY:
        if not (len(value) == 2 and value.isascii() and value.isalpha()):
            raise ApplicationError("Enter a two-letter country code, e.g. RU.", field="value")
        return value.upper()
    if not value:
        raise ApplicationError("Enter an address.", field="value")
    return value
