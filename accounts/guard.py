"""The fraud guard: what stands between a code request and an SMS pumping bill (issue 20).

code_request (accounts.services) runs it on every door, in this order:
1. the number (no database): its country (OTP_ALLOWED_REGIONS) and kind (OTP_ALLOWED_NUMBER_TYPES);
2. after the send limits, one call in the code's transaction (guard_check, the function
   accounts_guard_check of accounts migration 0011): whether an
   allow-list entry covers the request (then 3 to 5 are skipped), the active conversion blocks
   of its country and prefix, and the counts of 3. prefix velocity and 4. the SMS budget: counter
   rows per clock window, counted by one conditional upsert, so parallel requests cannot pass a cap;
5. the conversion watch (guard_watch, a beat job) writes the blocks that 2 reads.
Alerts go to the ops chat through the outbox (notifications.services.ops_guard_alert).
"""

import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

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

# The answers, in the request's language (locale/); the ops alerts below stay in English.
COUNTRY_REFUSED = gettext_lazy("We cannot send codes to this country.")
TYPE_REFUSED = gettext_lazy("We cannot send codes to this kind of number.")
PREFIX_REFUSED = gettext_lazy("Too many codes to numbers like this one. Try again later.")
BLOCK_REFUSED = gettext_lazy("Codes to numbers like this one are paused. Try again later.")
BUDGET_REFUSED = gettext_lazy("We cannot send more codes right now. Try again later.")


def phone_prefix(phone: str) -> str:
    """The E.164 number without its last OTP_PREFIX_FREE_DIGITS digits: one pumped range."""
    digits = settings.OTP_PREFIX_FREE_DIGITS
    return phone[: len(phone) - digits] if digits else phone


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


# The guard's one statement in the code's transaction, after the send limits: the function
# accounts_guard_check (accounts migration 0011, planned once per connection), which reads the
# allow-list and the blocks and counts the windows. Its SQL is there and only there.
_CHECK_CALL = "SELECT * FROM accounts_guard_check(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def phone_heads(phone: str) -> list[str]:
    """Every leading part of an E.164 number, "+7" to the whole: what a prefix entry may be."""
    return [phone[:end] for end in range(2, len(phone) + 1)]


def _window_start(now, size: timedelta) -> datetime:
    now = now.astimezone(UTC)
    if size == DAY:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(minute=0, second=0, microsecond=0)


def guard_check(*, phone: str, ip: str | None, key: str, country: str, prefix: str, sms: bool, now) -> None:
    """The guard's checks 3 to 5 for a code to `phone` (E.164, of `country`, in `prefix`) asked
    for from `ip` (address key `key`), in one statement (_CHECK_CALL), inside the code's
    transaction, at the database's time `now`. An allow-list entry for the phone, a head of it,
    the country or the address skips them all.

    A block by the conversion watch: 429 until it ends. Else the code is counted against its
    prefix's hourly cap (OTP_SENDS_PER_PREFIX_PER_HOUR: 429 when full) and, when it goes by SMS,
    the service's budget (OTP_SMS_BUDGET_PER_HOUR, OTP_SMS_BUDGET_PER_DAY: 503 when spent), each
    with Retry-After at the end of its window. The code that reaches 80 % of a budget window, and
    the one that uses its last code, queue one ops alert each: exactly one request sees each
    count, so each alert goes once per window."""
    windows = [(GuardCounter.PREFIX_HOUR, prefix, HOUR)]
    if sms:
        windows += [(GuardCounter.SMS_HOUR, "", HOUR), (GuardCounter.SMS_DAY, "", DAY)]
    starts = {scope: _window_start(now, size) for scope, _, size in windows}
    ends = {scope: starts[scope] + size for scope, _, size in windows}
    params = [
        phone,
        phone_heads(phone),
        country,
        prefix,
        ip,
        key,
        now,
        [scope for scope, _, _ in windows],
        [window_key for _, window_key, _ in windows],
        [starts[scope] for scope, _, _ in windows],
        settings.OTP_SENDS_PER_PREFIX_PER_HOUR,
        settings.OTP_SMS_BUDGET_PER_HOUR,
        settings.OTP_SMS_BUDGET_PER_DAY,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CHECK_CALL, params)
        allowed, blocked_until, scopes, values = cursor.fetchone()
    if allowed:
        return
    if blocked_until is not None:
        raise RateLimited(BLOCK_REFUSED, retry_after=(blocked_until - now).total_seconds(), reason="conversion_block")
    counts = dict(zip(scopes, values, strict=True))
    full = [scope for scope, _, _ in windows if scope not in counts]
    if full:
        wait = max((ends[scope] - now).total_seconds() for scope in full)
        if full == [GuardCounter.PREFIX_HOUR]:
            raise RateLimited(PREFIX_REFUSED, retry_after=wait, reason="prefix_velocity")
        day = GuardCounter.SMS_DAY in full
        raise ServiceUnavailable(BUDGET_REFUSED, retry_after=wait, reason="budget_day" if day else "budget_hour")
    for scope, label, cap in (
        (GuardCounter.SMS_HOUR, "hourly", settings.OTP_SMS_BUDGET_PER_HOUR),
        (GuardCounter.SMS_DAY, "daily", settings.OTP_SMS_BUDGET_PER_DAY),
    ):
        count = counts.get(scope)
        if count == cap:
            ops_guard_alert(
                title=f"SMS budget spent: {label}",
                lines=[
                    f"{count} of {cap} codes by SMS.",
                    f"New codes are refused until {ends[scope]:%Y-%m-%d %H:%M} UTC.",
                ],
            )
        elif count is not None and count == math.ceil(cap * BUDGET_ALERT_SHARE):
            ops_guard_alert(
                title=f"SMS budget at {round(100 * count / cap)} %: {label}",
                lines=[f"{count} of {cap} codes by SMS; the window ends {ends[scope]:%Y-%m-%d %H:%M} UTC."],
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
            raise ApplicationError(_('Enter a prefix as "+" and digits, e.g. +7999123.'), field="value")
        return "+" + digits
    if kind == GuardAllow.Kind.COUNTRY:
        if not (len(value) == 2 and value.isascii() and value.isalpha()):
            raise ApplicationError(_("Enter a two-letter country code, e.g. RU."), field="value")
        return value.upper()
    if not value:
        raise ApplicationError(_("Enter an address."), field="value")
    return value
