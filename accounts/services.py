import contextlib
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from notifications.models import Message
from notifications.services import messages_enqueue
from project import metrics
from project.db import lock_key
from project.exceptions import (
    ApplicationError,
    AuthenticationFailed,
    Forbidden,
    NotAuthenticated,
    NotFound,
    RateLimited,
)

from .guard import code_refusal_record, guard_check, guard_number_check, phone_prefix
from .models import PasswordTries, PhoneCode, User
from .phones import phone_normalize

HOUR = timedelta(hours=1)


def code_hash(*, phone: str, code: str) -> str:
    """HMAC-SHA256 keyed by SECRET_KEY; bound to the phone so a hash says nothing elsewhere."""
    return hmac.new(settings.SECRET_KEY.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CodeRequestResult:
    phone: str
    code: str
    expires_at: object


# The key of every client whose address is unknown (no usable REMOTE_ADDR): they share one
# budget rather than none.
UNKNOWN_ADDRESS = "unknown"


def ip_key(ip: str | None) -> str:
    """What the per-address limits count for a client address: an IPv4 address itself, an IPv6
    address by its network of OTP_IPV6_PREFIX bits (one customer's /64 is one client), and
    every client without a usable address under one key, so that no address switches a cap off."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return UNKNOWN_ADDRESS
    address = getattr(address, "ipv4_mapped", None) or address
    if address.version == 4:
        return str(address)
    return str(ipaddress.ip_network((address, settings.OTP_IPV6_PREFIX), strict=False))


def _send_refusal(*, phone: str, ip: str) -> tuple[RateLimited | None, object]:
    """Take the phone's and the address key `ip`'s advisory locks and say which send limit
    refuses a new code for `phone` from that address now: (the 429 to raise, or None; the
    database's clock, read under the locks). Of several refusals, the one that lasts longest:
    its Retry-After is when a request can pass. The one place the send limits are applied
    (code_request calls it in its transaction, which keeps the locks until the code is written).

    The limits per phone are per phone and address (the cooldown, OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR)
    under a larger cap for the phone from all addresses (OTP_SENDS_PER_PHONE_PER_HOUR): one
    address cannot use up the codes of someone else's phone, many addresses can use up at most
    the phone's hourly cap. One call of accounts_send_limits (accounts migration 0009, a function
    so that PostgreSQL plans it once per connection): the phone's codes of the last hour (newest
    first, at most its cap), those of them from this address, and the address's cap-th newest
    code of the hour, which exists iff the address reached its cap (one row read however busy a
    NAT is).
    """
    per_phone, per_ip = settings.OTP_SENDS_PER_PHONE_PER_HOUR, settings.OTP_SENDS_PER_IP_PER_HOUR
    per_pair = settings.OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM accounts_send_limits(%s, %s, %s, %s, %s, %s)",
            [lock_key(phone), lock_key(ip), phone, ip, per_phone, per_ip],
        )
        now, recent, ours, capped_at = cursor.fetchone()

    refusals = []
    cooldown = timedelta(seconds=settings.OTP_RESEND_COOLDOWN_S)
    if ours and ours[0] > now - cooldown:
        wait = (ours[0] + cooldown - now).total_seconds()
        text = _("A code was just sent. Request a new one in %(seconds)d s.") % {"seconds": int(wait) + 1}
        refusals.append((text, wait, "cooldown"))
    if len(ours) >= per_pair:
        text = _("Too many codes for this phone from this address. Try again later.")
        refusals.append((text, _hour_left(ours[per_pair - 1], now), "phone_ip_hourly"))
    if len(recent) >= per_phone:
        refusals.append(
            (_("Too many codes for this phone. Try again later."), _hour_left(recent[-1], now), "phone_hourly")
        )
    if capped_at is not None:
        refusals.append(
            (_("Too many codes from this address. Try again later."), _hour_left(capped_at, now), "ip_hourly")
        )
    if not refusals:
        return None, now
    text, wait, reason = max(refusals, key=lambda refusal: refusal[1])
    return RateLimited(text, retry_after=wait, reason=reason), now


def _hour_left(oldest, now) -> float:
    return (oldest + HOUR - now).total_seconds()


def code_request(*, phone: str, ip: str | None) -> CodeRequestResult:
    """Issue a new 4-digit login code for `phone` and queue its delivery.

    Rules (_send_refusal): one code per OTP_RESEND_COOLDOWN_S per phone and client address
    (ip_key: an IPv6 client by its /64); at most OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR per phone
    and address, OTP_SENDS_PER_PHONE_PER_HOUR per phone and OTP_SENDS_PER_IP_PER_HOUR per
    address. They are checked under the phone's and the address's advisory locks, so parallel
    requests cannot both pass; the code row and its outbox rows commit together. The answer is the same whether or
    not the phone belongs to a user.

    The fraud guard (accounts.guard) runs here, so every door gets it: the number's country
    and kind; then, unless the allow-list covers the request, the conversion watch's blocks,
    the prefix's hourly cap and the SMS budget (guard_check, one statement). A test number
    (OTP_TEST_NUMBERS) skips all of it and gets its fixed code, sent nowhere.

    The one place a code's refusal leaves the service: every refusal (the limits', the fraud
    guard's) is recorded (code_refusal_record, after the rollback) and counted by its `reason`
    (metrics), issued codes by the phone's region.
    """
    key = ip_key(ip)
    attempt = {"phone": phone.strip() if isinstance(phone, str) else "", "country": "", "prefix": ""}
    try:
        result = _code_issue(phone=phone, ip=ip, key=key, attempt=attempt)
    except ApplicationError as refusal:
        code_refusal_record(refusal=refusal, key=key, now=timezone.now(), **attempt)
        metrics.code_refused(refusal)
        raise
    metrics.code_issued(result.phone)
    return result


def _code_issue(*, phone: str, ip: str | None, key: str, attempt: dict) -> CodeRequestResult:
    phone = attempt["phone"] = phone_normalize(phone)
    test_code = settings.OTP_TEST_NUMBERS.get(phone)
    if test_code is not None:
        return _test_code_issue(phone=phone, code=test_code, ip=ip, key=key)
    country = attempt["country"] = guard_number_check(phone=phone)
    prefix = attempt["prefix"] = phone_prefix(phone)
    code = f"{secrets.randbelow(10_000):04d}"
    # The text of the SMS / e-mail, in the language of the request that asks for it (active now).
    minutes = settings.OTP_TTL_S // 60
    body = ngettext(
        "Your login code: %(code)s. It is valid for %(minutes)d minute.",
        "Your login code: %(code)s. It is valid for %(minutes)d minutes.",
        minutes,
    ) % {"code": code, "minutes": minutes}
    with transaction.atomic():
        # The clock is read under the locks: a request that waited must see the codes issued
        # while it waited as past, not future (else the cooldown and windows are off).
        refusal, now = _send_refusal(phone=phone, ip=key)
        if refusal is not None:
            raise refusal
        sms = "sms" in settings.OTP_DELIVERY_BACKENDS
        guard_check(phone=phone, ip=ip, key=key, country=country, prefix=prefix, sms=sms, now=now)
        challenge = _challenge_create(phone=phone, code=code, ip=ip, key=key, now=now, country=country, prefix=prefix)
        messages_enqueue(
            [
                Message(channel=channel, recipient=phone, body=body, sensitive=True)
                for channel in settings.OTP_DELIVERY_BACKENDS
            ]
        )
    return CodeRequestResult(phone=phone, code=code, expires_at=challenge.expires_at)


def _test_code_issue(*, phone: str, code: str, ip: str | None, key: str) -> CodeRequestResult:
    """A test number's code (OTP_TEST_NUMBERS): its fixed code, nothing sent or queued, no send
    limit and no guard; code_verify's try caps hold as for any code. Its row has no country or
    prefix, so the guard's counts never see it."""
    challenge = _challenge_create(phone=phone, code=code, ip=ip, key=key, now=timezone.now())
    return CodeRequestResult(phone=phone, code=code, expires_at=challenge.expires_at)


def _challenge_create(*, phone: str, code: str, ip: str | None, key: str, now, country="", prefix="") -> PhoneCode:
    """The login code's row: its digest, the client's address and limits key, OTP_TTL_S to live."""
    return PhoneCode.objects.create(
        phone=phone,
        code_hash=code_hash(phone=phone, code=code),
        ip=ip,
        ip_key=key,
        expires_at=now + timedelta(seconds=settings.OTP_TTL_S),
        country=country,
        prefix=prefix,
    )


def _code_check_format(code) -> str:
    if not isinstance(code, str) or len(code) != 4 or not code.isascii() or not code.isdigit():
        raise ApplicationError(_("Enter the 4-digit code."), field="confirmation_code")
    return code


# The try's SQL: accounts_code_try (accounts migration 0009, a function so that PostgreSQL plans
# it once per connection). The user's columns come from the function's row of accounts_user, so
# a column added to the table needs no change here.
_TRY_CALL = """
SELECT (try.r_user).*, try.r_matched AS try_matched, try.r_capped_at AS try_capped_at, try.r_now AS try_now
FROM accounts_code_try(%s, %s, %s, %s, %s, %s, %s) AS try
"""


def _code_try(*, phone: str, code: str, key: str) -> tuple[bool | None, object, User | None, object]:
    """One try at the phone's latest code from the address key `key`, under that address's
    advisory lock (taken by the function; the caller's transaction keeps it), so parallel tries
    from one address cannot pass its hourly cap together. The try is counted and, when the
    digest matches, consumes the code. It passes only while the address has wrong tries left
    this hour (OTP_TRIES_PER_IP_PER_HOUR) and that code is unused, unexpired, has tries left
    (OTP_MAX_ATTEMPTS) and tries left for this address (OTP_MAX_ATTEMPTS_PER_IP): a code works
    once; a wrong try is recorded with its address. The stored HMAC is compared in SQL: both
    sides are digests keyed by SECRET_KEY, so how long a comparison takes says nothing about the
    code.

    Returns (True, None, user, now), right and now consumed; (False, None, None, now), wrong,
    counted and recorded; (None, None, None, now), nothing was counted (no usable code, or its
    tries are used up); (None, at, None, now), the address is at its hourly cap of wrong tries,
    the oldest of which was at `at`; `now` is the database's clock under the lock. A right try
    reads the user with that phone in the same call (None before the first login); a wrong one
    reads nobody, so it costs the same for a registered phone."""
    params = [
        lock_key(key),
        phone,
        code_hash(phone=phone, code=code),
        key,
        settings.OTP_MAX_ATTEMPTS,
        settings.OTP_MAX_ATTEMPTS_PER_IP,
        settings.OTP_TRIES_PER_IP_PER_HOUR,
    ]
    (row,) = User.objects.raw(_TRY_CALL, params)  # one row: the outcome, and the user if any
    return row.try_matched, row.try_capped_at, row if row.pk is not None else None, row.try_now


def code_verify(*, phone: str, code: str, ip: str | None, on_login=None) -> User:
    """Log in with the latest code sent to `phone`, tried from the client address `ip`; create
    the user on first login.

    A code survives at most OTP_MAX_ATTEMPTS guesses, OTP_MAX_ATTEMPTS_PER_IP of them from one
    client address (ip_key), so one address cannot burn a code for its owner; it works once, and
    only until it expires. One address tries at most OTP_TRIES_PER_IP_PER_HOUR wrong codes an
    hour at all phones together, then gets a 429 for every try (_code_try, under its lock). A try
    beyond a budget gets the same answer whether it was right or wrong. A wrong try's count is
    committed although the request fails; a disabled user's right try is not (the code stays
    usable, the answer says the account is disabled).

    `on_login(user)` runs in the transaction that uses the code (the API issues its refresh
    token there): the code's use and what on_login writes commit together, or neither does.
    """
    phone = phone_normalize(phone)
    code = _code_check_format(code)
    key = ip_key(ip)
    with transaction.atomic():
        # The clock is the database's, read under the lock: a try that waited counts the tries
        # made meanwhile.
        right, capped_at, user, now = _code_try(phone=phone, code=code, key=key)
        if right:
            if user is None or not user.is_active:  # a first login creates it; a disabled one is refused
                user = user_get_or_create(phone=phone)
            if on_login is not None:
                on_login(user)
    if right:
        metrics.code_used(phone)
        return user
    if right is False:
        metrics.WRONG_TRIES.inc()
    if capped_at is not None:
        metrics.TRIES_REFUSED.labels("tries_ip_hourly").inc()
        raise RateLimited(
            _("Too many wrong codes from this address. Try again later."),
            retry_after=_hour_left(capped_at, now),
            reason="tries_ip_hourly",
        )
    if right is None and _code_exhausted(phone=phone, key=key, now=now):
        raise AuthenticationFailed(_("Too many wrong tries. Request a new code."), field="confirmation_code")
    raise AuthenticationFailed(_("Wrong or expired code. Request a new one."), field="confirmation_code")


def code_tries_left(*, phone: str, ip: str | None) -> int:
    """How many more tries the latest code sent to `phone` takes from the client address `ip`:
    0 when it is used, expired or out of tries (then only a new code helps). The login page asks
    after a wrong try (the API's answer is one for every wrong, expired or spent code)."""
    key = ip_key(ip)
    latest = (
        PhoneCode.objects.filter(phone=phone_normalize(phone))
        .annotate(ours=Count("wrong_tries", filter=Q(wrong_tries__ip_key=key)))
        .order_by("-created_at")
        .first()
    )
    if latest is None or latest.consumed_at is not None or latest.expires_at <= timezone.now():
        return 0
    return max(0, min(settings.OTP_MAX_ATTEMPTS - latest.attempts, settings.OTP_MAX_ATTEMPTS_PER_IP - latest.ours))


def _code_exhausted(*, phone: str, key: str, now) -> bool:
    """Whether the latest code is unused and unexpired but out of tries, or of tries from the
    address key `key` (a refused try's answer)."""
    latest = (
        PhoneCode.objects.filter(phone=phone)
        .annotate(ours=Count("wrong_tries", filter=Q(wrong_tries__ip_key=key)))
        .order_by("-created_at")
        .first()
    )
    return (
        latest is not None
        and latest.consumed_at is None
        and latest.expires_at > now
        and (latest.attempts >= settings.OTP_MAX_ATTEMPTS or latest.ours >= settings.OTP_MAX_ATTEMPTS_PER_IP)
    )


def user_get_or_create(*, phone: str) -> User:
    """The user with this phone, created (with a fresh referral code) if there is none."""
    user = User.objects.filter(phone=phone).first()
    if user is not None:
        if not user.is_active:
            raise ApplicationError(_("This account is disabled."), field="phone")
        return user
    try:
        with transaction.atomic():
            user = User.objects.create_user(phone=phone)
        # Counted once it is committed (a first login's transaction may still roll back).
        transaction.on_commit(metrics.USERS_CREATED.inc)
        return user
    except IntegrityError:
        # A parallel first login created it a moment ago.
        return User.objects.get(phone=phone)


def phone_check_available(*, phone, user_id: int | None = None) -> str:
    """The phone in E.164 when no other user has it; ApplicationError otherwise. Used by every
    staff edit (the admin API and the Django admin); the unique constraint backs it in a race."""
    phone = phone_normalize(phone)
    if User.objects.filter(phone=phone).exclude(pk=user_id).exists():
        raise ApplicationError(PHONE_TAKEN, field="phone")
    return phone


PHONE_TAKEN = gettext_lazy("Another user has this phone number.")


def user_update(*, user: User, **changes) -> User:
    """Staff edits of a user's own fields (phone, is_active, is_staff, is_superuser; None leaves
    a field as it is): a new phone must be valid and not taken by someone else."""
    changes = {name: value for name, value in changes.items() if value is not None}
    unknown = set(changes) - {"phone", "is_active", "is_staff", "is_superuser"}
    if unknown:
        raise TypeError(f"user_update does not change {sorted(unknown)}")
    if "phone" in changes:
        changes["phone"] = phone_check_available(phone=changes["phone"], user_id=user.pk)
    if changes:
        for name, value in changes.items():
            setattr(user, name, value)
        try:
            with transaction.atomic():
                user.save(update_fields=list(changes))
        except IntegrityError as exc:
            raise ApplicationError(PHONE_TAKEN, field="phone") from exc
    return user


def user_lock(*, user_id: int) -> User:
    """The user's row, locked until the transaction ends; NotFound when it is gone. Staff edits
    and deletes take it first, so an edit racing a delete finds the row or a 404, never a
    half-done write (issue 24.1)."""
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound(_("No such user."))
    return user


# --- who may change whom (the admin API and the Django admin) ---------------------------------

STAFF_FLAGS = ("is_active", "is_staff", "is_superuser")
ONLY_A_SUPERUSER = gettext_lazy("Only a superuser may change, deactivate or delete a staff or superuser account.")
OWN_FLAGS = gettext_lazy("Nobody changes their own is_active, is_staff or is_superuser.")


def staff_rule_check(*, actor: User, user: User, changes=()) -> None:
    """Forbidden unless `actor` may change (or delete) `user` as stored: only a superuser
    touches a staff or superuser account or sets is_staff / is_superuser on anyone; nobody
    changes their own is_active, is_staff or is_superuser. `changes` names the fields that
    change. Django's model permissions (view/change/delete user) are the doors' to ask."""
    changes = set(changes)
    if actor.pk == user.pk and changes & set(STAFF_FLAGS):
        raise Forbidden(OWN_FLAGS)
    if actor.is_superuser:
        return
    if user.is_staff or user.is_superuser or changes & {"is_staff", "is_superuser"}:
        raise Forbidden(ONLY_A_SUPERUSER)


def staff_rule_allows(*, actor: User, user: User) -> bool:
    """staff_rule_check as a yes/no, for the admin's has_change_permission and has_delete_permission."""
    try:
        staff_rule_check(actor=actor, user=user)
    except Forbidden:
        return False
    return True


# --- refresh tokens --------------------------------------------------------------------------

REFRESH_INVALID = gettext_lazy("Token is invalid or expired.")
REFRESH_USED = gettext_lazy("This refresh token has already been used.")


def refresh_rotate(*, refresh: str) -> RefreshToken:
    """A new refresh token (and its access token) for a valid, unused one of an active user;
    the old one is used up.

    Single use under concurrency: the old token's BlacklistedToken row decides. Its OneToOne on
    the outstanding token lets exactly one INSERT succeed, the others wait for it and fail on
    the unique index, so however many requests send one token at once, one gets the new pair
    and the others NotAuthenticated (401), as does any later use. The new token is issued in
    the winner's transaction, so it exists only if the old one was used up.
    """
    try:
        old = RefreshToken(refresh)  # signature, expiry, type; a used token fails here too
    except TokenError as exc:
        if _refresh_used(refresh):
            raise NotAuthenticated(REFRESH_USED) from exc
        raise ApplicationError(REFRESH_INVALID, field="refresh") from exc
    try:
        user = User.objects.filter(pk=old.get(jwt_settings.USER_ID_CLAIM), is_active=True).first()
    except (TypeError, ValueError):
        user = None
    if user is None:  # deleted or disabled since the token was issued
        raise ApplicationError(REFRESH_INVALID, field="refresh")
    with transaction.atomic():
        outstanding, _ = OutstandingToken.objects.get_or_create(
            jti=old[jwt_settings.JTI_CLAIM],
            defaults={"user": user, "token": refresh, "expires_at": datetime_from_epoch(old["exp"])},
        )
        try:
            with transaction.atomic():
                BlacklistedToken.objects.create(token=outstanding)
        except IntegrityError as exc:
            raise NotAuthenticated(REFRESH_USED) from exc
        return RefreshToken.for_user(user)


def _refresh_used(refresh: str) -> bool:
    """Whether `refresh` is a genuine refresh token of ours, unexpired, and already used."""
    try:
        token = UntypedToken(refresh)
    except TokenError:
        return False
    if token.get(jwt_settings.TOKEN_TYPE_CLAIM) != RefreshToken.token_type:
        return False
    return BlacklistedToken.objects.filter(token__jti=token.get(jwt_settings.JTI_CLAIM)).exists()


# --- password tries at the admin login -------------------------------------------------------


def password_try_count(*, phone, ip: str | None) -> None:
    """Count one password try at the admin login for the account (`phone`, any spelling) and the
    client address; RateLimited (nothing counted) when either has had its tries in the current
    window: ADMIN_LOGIN_TRIES_PER_ACCOUNT and ADMIN_LOGIN_TRIES_PER_IP per ADMIN_LOGIN_WINDOW_S,
    a window starting at its first try. Each count is one conditional UPDATE of the key's row,
    so parallel tries cannot pass a cap. A phone that is no valid number is no account: only
    its address counts."""
    keys = []
    with contextlib.suppress(ApplicationError):  # no number, no account
        keys.append((PasswordTries.ACCOUNT, phone_normalize(phone), settings.ADMIN_LOGIN_TRIES_PER_ACCOUNT))
    if ip:
        keys.append((PasswordTries.ADDRESS, ip, settings.ADMIN_LOGIN_TRIES_PER_IP))
    now = timezone.now()
    window = timedelta(seconds=settings.ADMIN_LOGIN_WINDOW_S)
    with transaction.atomic():  # all keys or none (always account, then address: no deadlock)
        for scope, key, cap in keys:
            full_since = _password_try(scope=scope, key=key, cap=cap, now=now, window=window)
            if full_since is not None:
                wait = (full_since + window - now).total_seconds()
                if scope == PasswordTries.ACCOUNT:
                    text = _("Too many password tries for this account. Try again in %(minutes)d min.")
                else:
                    text = _("Too many password tries from this address. Try again in %(minutes)d min.")
                minutes = max(1, round(wait / 60))
                raise RateLimited(text % {"minutes": minutes}, retry_after=wait)


def _password_try(*, scope: str, key: str, cap: int, now, window):
    """Count one try of the key: None when counted, else the start of its full window."""
    expired = Q(window_start__lte=now - window)
    rows = PasswordTries.objects.filter(scope=scope, key=key)
    for _attempt in range(3):
        counted = rows.filter(expired | Q(tries__lt=cap)).update(
            tries=Case(When(expired, then=Value(1)), default=F("tries") + 1),
            window_start=Case(When(expired, then=Value(now)), default=F("window_start")),
        )
        if counted:
            return None
        full_since = rows.values_list("window_start", flat=True).first()
        if full_since is not None:
            return full_since
        try:
            with transaction.atomic():
                PasswordTries.objects.create(scope=scope, key=key, window_start=now, tries=1)
            return None
        except IntegrityError:
            continue  # a parallel first try made the row: count on it
    raise AssertionError("unreachable: the row exists after a unique violation")


def password_tries_clear(*, phone) -> None:
    """A right password starts the account's count again (the address's count stays)."""
    try:
        phone = phone_normalize(phone)
    except ApplicationError:
        return
    PasswordTries.objects.filter(scope=PasswordTries.ACCOUNT, key=phone).delete()
