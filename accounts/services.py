import hashlib
import hmac
import ipaddress
import secrets
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from notifications.models import Message
from notifications.services import messages_enqueue, messages_publish_on_commit
from project.db import (
    LOCK_OTP_IP,
    LOCK_OTP_PHONE,
    advisory_xact_lock,
    columns,
    insert,
    insert_select,
    instance_from_row,
    lock_keys,
    mark_saved,
    value_from_db,
)
from project.exceptions import ApplicationError, AuthenticationFailed, RateLimited

from .models import PhoneCode, User
from .phones import phone_normalize

HOUR = timedelta(hours=1)


def code_hash(*, phone: str, code: str) -> str:
    """HMAC-SHA256 keyed by SECRET_KEY; bound to the phone so a hash says nothing elsewhere."""
    return hmac.new(settings.SECRET_KEY.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def client_ip(*, remote_addr: str | None, forwarded_for: str | None) -> str | None:
    """The client's address. X-Forwarded-For counts only when the peer is a trusted proxy;
    then the right-most address that is not itself a trusted proxy is the client."""
    trusted = set(settings.TRUSTED_PROXIES)
    ip = remote_addr or None
    if ip in trusted and forwarded_for:
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            if hop and hop not in trusted:
                ip = hop
                break
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


def request_ip(request) -> str | None:
    """client_ip of a Django request; used by the API and the pages alike."""
    meta = request.META
    return client_ip(remote_addr=meta.get("REMOTE_ADDR"), forwarded_for=meta.get("HTTP_X_FORWARDED_FOR"))


@dataclass(frozen=True)
class CodeRequestResult:
    phone: str
    code: str
    expires_at: object


def _retry_after(oldest, window, now) -> float:
    return (oldest + window - now).total_seconds()


def _codes_in_last_hour(*, phone: str, ip: str | None, now) -> tuple[list, object]:
    """What the send limits need, in one query: the phone's codes of the last hour (newest
    first, at most its cap) and the cap-th newest code of the address, which exists iff the
    address reached its cap and leaves the window first (one row read however busy a NAT is)."""
    table = PhoneCode._meta.db_table
    created_at = PhoneCode._meta.get_field("created_at")
    since = connection.ops.adapt_datetimefield_value(now - HOUR)  # as the ORM sends it (SQLite: text)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 0, created_at FROM (SELECT created_at FROM {table}"
            f" WHERE phone = %s AND created_at > %s ORDER BY created_at DESC LIMIT %s) AS by_phone"
            f" UNION ALL SELECT 1, created_at FROM (SELECT created_at FROM {table}"
            f" WHERE ip = %s AND created_at > %s ORDER BY created_at DESC LIMIT 1 OFFSET %s) AS by_address",
            [phone, since, settings.OTP_SENDS_PER_PHONE_PER_HOUR, ip, since, settings.OTP_SENDS_PER_IP_PER_HOUR - 1],
        )
        rows = [(by_ip, value_from_db(created_at, at)) for by_ip, at in cursor.fetchall()]
    recent = sorted((at for by_ip, at in rows if not by_ip), reverse=True)
    capped_at = next((at for by_ip, at in rows if by_ip), None)
    return recent, capped_at


def _send_refusal(*, recent: list, capped_at, now) -> tuple[str, object] | None:
    """Which send limit refuses a new code, and the time its wait counts from; None if none.

    `recent`: the phone's codes of the last hour, newest first, at most its cap; `capped_at`:
    the address's cap-th newest code of the hour, if it has one. accounts_code_issue (migration
    0003) applies the same rules on PostgreSQL; the tests run both.
    """
    if recent and recent[0] > now - timedelta(seconds=settings.OTP_RESEND_COOLDOWN_S):
        return "cooldown", recent[0]
    if len(recent) >= settings.OTP_SENDS_PER_PHONE_PER_HOUR:
        return "phone", recent[-1]
    if capped_at is not None:
        return "address", capped_at
    return None


def _refuse(refusal: str, anchor, now):
    """The 429 of a refused send, waiting until its limit lets the next code through."""
    if refusal == "cooldown":
        wait = _retry_after(anchor, timedelta(seconds=settings.OTP_RESEND_COOLDOWN_S), now)
        raise RateLimited(f"A code was just sent. Request a new one in {int(wait) + 1} s.", retry_after=wait)
    wait = _retry_after(anchor, HOUR, now)
    if refusal == "phone":
        raise RateLimited("Too many codes for this phone. Try again later.", retry_after=wait)
    raise RateLimited("Too many codes from this address. Try again later.", retry_after=wait)


def _issue_in_database() -> bool:
    """Whether accounts_code_issue does the issuing (PostgreSQL) or _code_issue does (elsewhere)."""
    return connection.vendor == "postgresql"


def code_request(*, phone: str, ip: str | None) -> CodeRequestResult:
    """Issue a new 4-digit login code for `phone` and queue its delivery.

    Rules: one code per OTP_RESEND_COOLDOWN_S per phone; at most OTP_SENDS_PER_PHONE_PER_HOUR
    per phone and OTP_SENDS_PER_IP_PER_HOUR per client IP. The answer is the same whether
    or not the phone belongs to a user.
    """
    phone = phone_normalize(phone)
    code = f"{secrets.randbelow(10_000):04d}"
    challenge = PhoneCode(phone=phone, code_hash=code_hash(phone=phone, code=code), ip=ip)
    body = f"Your login code: {code}. It is valid for {settings.OTP_TTL_S // 60} minutes."
    messages = [
        Message(channel=channel, recipient=phone, body=body, sensitive=True)
        for channel in settings.OTP_DELIVERY_BACKENDS
    ]
    if _issue_in_database():
        _code_issue_in_database(challenge, messages)
    else:
        _code_issue(challenge, messages)
    return CodeRequestResult(phone=phone, code=code, expires_at=challenge.expires_at)


def _locks(challenge: PhoneCode) -> list[tuple]:
    # So that parallel requests cannot both pass the limits (always phone, then IP).
    return [(LOCK_OTP_PHONE, challenge.phone), *([(LOCK_OTP_IP, challenge.ip)] if challenge.ip else [])]


def _code_issue(challenge: PhoneCode, messages: list[Message]) -> None:
    """Apply the send limits, then save the code row and its outbox rows (publishing them after
    commit), all under the phone's and the address's locks."""
    with transaction.atomic():
        advisory_xact_lock(*_locks(challenge))
        # The clock is read under the locks: a request that waited must see the codes issued
        # while it waited as past, not future (else the cooldown and windows are off).
        now = timezone.now()
        recent, capped_at = _codes_in_last_hour(phone=challenge.phone, ip=challenge.ip, now=now)
        refusal = _send_refusal(recent=recent, capped_at=capped_at, now=now)
        if refusal is not None:
            _refuse(*refusal, now)
        challenge.expires_at = now + timedelta(seconds=settings.OTP_TTL_S)
        messages_enqueue(messages, with_rows=[challenge])  # the code row and its messages: one statement


# The outbox columns accounts_code_issue takes from the caller's Message rows (a JSON array of
# objects). It sets created_at and updated_at itself and leaves the rest NULL; a test holds this
# list to the model.
CODE_ISSUE_MESSAGE_FIELDS = (
    "channel",
    "recipient",
    "body",
    "sensitive",
    "status",
    "attempts",
    "last_error",
    "provider_id",
)


def _code_issue_in_database(challenge: PhoneCode, messages: list[Message]) -> None:
    """_code_issue in one statement, accounts_code_issue (migration 0003): one round trip
    outside a transaction, where _code_issue takes four. Inside one (atomic), the locks and rows
    are the caller's transaction's, as with _code_issue, and the publish waits for its commit.

    The lock keys and the outbox rows go as text (an array literal, JSON): psycopg adapts list
    arguments in Python, element by element; as nine lists they cost 0.47M of a signup's 3.06M
    instructions in the Django process (callgrind).
    """
    fields = [Message._meta.get_field(name) for name in CODE_ISSUE_MESSAGE_FIELDS]
    rows = [{f.name: f.get_db_prep_save(getattr(m, f.attname), connection) for f in fields} for m in messages]
    locks = "{" + ",".join(f"{{{space},{key}}}" for space, key in lock_keys(*_locks(challenge))) + "}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT refused, anchor, issued_at, code_id, message_ids FROM accounts_code_issue("
            "%s::integer[], %s::text, %s::inet, %s::text, %s::interval, %s::interval, %s::integer, %s::integer,"
            " %s::jsonb)",
            [
                locks,
                challenge.phone,
                challenge.ip,
                challenge.code_hash,
                timedelta(seconds=settings.OTP_TTL_S),
                timedelta(seconds=settings.OTP_RESEND_COOLDOWN_S),
                settings.OTP_SENDS_PER_PHONE_PER_HOUR,
                settings.OTP_SENDS_PER_IP_PER_HOUR,
                orjson.dumps(rows).decode(),
            ],
        )
        refused, anchor, issued_at, code_id, message_ids = cursor.fetchone()
    if refused is not None:
        _refuse(refused, anchor, issued_at)
    challenge.created_at, challenge.expires_at = issued_at, issued_at + timedelta(seconds=settings.OTP_TTL_S)
    for message in messages:
        message.created_at = message.updated_at = issued_at
    mark_saved([challenge, *messages], [code_id, *(message_ids or [])])
    messages_publish_on_commit(messages)


def _code_check_format(code) -> str:
    if not isinstance(code, str) or len(code) != 4 or not code.isascii() or not code.isdigit():
        raise ApplicationError("Enter the 4-digit code.", field="confirmation_code")
    return code


def _code_attempt(*, phone: str, code: str, now) -> tuple[str, list]:
    """One try at the latest code sent to `phone`: a conditional UPDATE that counts it and, if
    `code` is right, consumes the code, RETURNING consumed_at (NULL for a wrong try).

    It passes only while that code is unused, unexpired and has tries left, so however many
    tries arrive at once a code takes at most OTP_MAX_ATTEMPTS of them and works once. The
    stored HMAC is compared in SQL: both sides are digests keyed by SECRET_KEY, so how long a
    comparison takes says nothing about the code.
    """
    table = PhoneCode._meta.db_table
    at = connection.ops.adapt_datetimefield_value(now)  # as the ORM sends it (SQLite: text)
    sql = (
        f"UPDATE {table} SET attempts = attempts + 1,"
        " consumed_at = CASE WHEN code_hash = %s THEN %s ELSE NULL END"
        f" WHERE id = (SELECT id FROM {table} WHERE phone = %s ORDER BY created_at DESC LIMIT 1)"
        " AND consumed_at IS NULL AND expires_at > %s AND attempts < %s"
        " RETURNING consumed_at"  # not "consumed_at IS NOT NULL": SQLite 3.40 answers 1 for a NULL
    )
    return sql, [code_hash(phone=phone, code=code), at, phone, at, settings.OTP_MAX_ATTEMPTS]


def _code_try(*, phone: str, code: str, now) -> tuple[bool | None, User | None]:
    """Count one try (_code_attempt). First item: True, right and now consumed; False, wrong and
    counted; None, nothing was counted (no usable code, or its tries are used up).

    On PostgreSQL the same statement reads the user with that phone after a right try (the
    UPDATE in a CTE; second item, None if there is none yet): a login's check is one round trip.
    Elsewhere the second item is None and the caller looks the user up.
    """
    sql, params = _code_attempt(phone=phone, code=code, now=now)
    with_user = connection.vendor == "postgresql"
    if with_user:
        sql = (
            f"WITH attempt AS ({sql}) SELECT attempt.consumed_at, {columns(User, 'u')} FROM attempt"
            f" LEFT JOIN {User._meta.db_table} u ON attempt.consumed_at IS NOT NULL AND u.phone = %s"
        )
        params.append(phone)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, None
    right = row[0] is not None
    found = with_user and right and row[1] is not None
    return right, instance_from_row(User, row[1:]) if found else None


# The rows of a login go in only when its try consumed the code.
_CONSUMED = "attempt WHERE attempt.consumed_at IS NOT NULL"


def _code_try_saving(*, phone: str, code: str, now, rows: list) -> bool | None:
    """_code_try for a user already read, PostgreSQL only: the same UPDATE, and `rows` inserted
    by the same statement when it consumes the code (each an INSERT ... SELECT over the
    UPDATE's row, in a CTE). Outside a transaction the statement is its own: the try, the code's
    use and the rows commit together in one round trip. Answers as _code_try's first item."""
    sql, params = _code_attempt(phone=phone, code=code, now=now)
    ctes = [f"attempt AS ({sql})"]
    for n, row in enumerate(rows):
        row_sql, values = insert_select(row, _CONSUMED)
        ctes.append(f"r{n} AS ({row_sql})")
        params += values
    keys = "".join(f", (SELECT * FROM r{n})" for n in range(len(rows)))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} SELECT attempt.consumed_at{keys} FROM attempt", params)
        found = cursor.fetchone()
    if found is None:
        return None
    if found[0] is None:
        return False
    mark_saved(rows, found[1:])
    return True


def _login_read(*, phone: str, code: str) -> tuple[bool, User | None]:
    """Whether `code` is the latest code's (not whether it can still be used: _code_attempt
    decides that), and then the user with `phone`, in one query that writes nothing. Without a
    match the user is not built, so a wrong code costs the same for a registered phone."""
    table = PhoneCode._meta.db_table
    sql = (
        f"SELECT (SELECT c.code_hash = %s FROM {table} c WHERE c.phone = %s ORDER BY c.created_at DESC LIMIT 1),"
        f" {columns(User, 'u')} FROM (SELECT 1) AS one LEFT JOIN {User._meta.db_table} u ON u.phone = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [code_hash(phone=phone, code=code), phone, phone])
        row = cursor.fetchone()
    matches = bool(row[0])
    return matches, instance_from_row(User, row[1:]) if matches and row[1] is not None else None


def _login_in_one_statement(*, phone: str, code: str, now, login_rows) -> tuple[bool | None, User | None] | None:
    """A returning user's login with the right code, on PostgreSQL, in two round trips: the
    user and the code's match are read first (_login_read), so the rows login_rows() builds
    for the user go in with the try (_code_try_saving), one statement outside a transaction.

    None when the transaction path must decide: a wrong code, no user yet (a first login
    creates it), a disabled user (refused), or a user deleted since it was read (the statement
    failed and changed nothing). A wrong try therefore runs the same statements whether the
    phone is registered or not, as it did before this path existed, so how long it takes
    does not tell which. A right code that a parallel login used in between gets _code_try's
    answer.
    """
    if connection.vendor != "postgresql":
        return None
    matches, user = _login_read(phone=phone, code=code)
    if not matches or user is None or not user.is_active:
        return None
    rows = login_rows(user)
    try:
        # In a caller's transaction, a savepoint: a failed statement leaves that transaction usable.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            right = _code_try_saving(phone=phone, code=code, now=now, rows=rows)
    except IntegrityError:
        # Deleted since it was read: the rows' key to it failed, and nothing was written. A
        # unique clash (a token id drawn twice) lands here too, and is tried again below.
        return None
    return right, user if right else None


def code_verify(*, phone: str, code: str, login_rows=None) -> User:
    """Log in with the latest code sent to `phone`; create the user on first login.

    A code survives at most OTP_MAX_ATTEMPTS guesses, works once, and only until it expires
    (_code_attempt). A try beyond the budget gets the same answer whether it was right or wrong.
    A wrong try's count is committed although the request fails.

    `login_rows(user)` gives unsaved rows (the API's refresh-token row) that commit with the
    code's use, or none of them does and the code still works. Its rows may be dropped (a
    parallel login used the code first), so it must only build them. With it, a returning
    user's login with the right code is two round trips on PostgreSQL
    (_login_in_one_statement); everything else is one transaction: the try, the user (created
    on first login) and the rows.
    """
    phone = phone_normalize(phone)
    code = _code_check_format(code)
    now = timezone.now()
    done = None
    if login_rows is not None:
        done = _login_in_one_statement(phone=phone, code=code, now=now, login_rows=login_rows)
    if done is None:
        with transaction.atomic():
            right, user = _code_try(phone=phone, code=code, now=now)
            if right:
                if user is None or not user.is_active:  # a first login creates it; a disabled one is refused
                    user = user_get_or_create(phone=phone)
                rows = login_rows(user) if login_rows is not None else []
                if rows:
                    insert(*rows)
        done = right, user
    right, user = done
    if right:
        return user
    if right is None and _code_exhausted(phone=phone, now=now):
        raise AuthenticationFailed("Too many wrong tries. Request a new code.", field="confirmation_code")
    raise AuthenticationFailed("Wrong or expired code. Request a new one.", field="confirmation_code")


def _code_exhausted(*, phone: str, now) -> bool:
    """Whether the latest code is unused and unexpired but out of tries (a refused try's answer)."""
    latest = PhoneCode.objects.filter(phone=phone).order_by("-created_at").first()
    return (
        latest is not None
        and latest.consumed_at is None
        and latest.expires_at > now
        and latest.attempts >= settings.OTP_MAX_ATTEMPTS
    )


def user_get_or_create(*, phone: str) -> User:
    """The user with this phone, created (with a fresh referral code) if there is none."""
    user = User.objects.filter(phone=phone).first()
    if user is not None:
        if not user.is_active:
            raise ApplicationError("This account is disabled.", field="phone")
        return user
    try:
        with transaction.atomic():
            return User.objects.create_user(phone=phone)
    except IntegrityError:
        # A parallel first login created it a moment ago.
        return User.objects.get(phone=phone)


def user_update(*, user: User, phone: str | None = None, is_active: bool | None = None) -> User:
    """Staff edits: a new phone must be valid and not taken by someone else."""
    fields = []
    if phone is not None:
        phone = phone_normalize(phone)
        if User.objects.filter(phone=phone).exclude(pk=user.pk).exists():
            raise ApplicationError("Another user has this phone number.", field="phone")
        user.phone = phone
        fields.append("phone")
    if is_active is not None:
        user.is_active = is_active
        fields.append("is_active")
    if fields:
        try:
            with transaction.atomic():
                user.save(update_fields=fields)
        except IntegrityError as exc:
            raise ApplicationError("Another user has this phone number.", field="phone") from exc
    return user
