import contextlib
import functools
from datetime import UTC

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import Count, OuterRef, Q

from accounts.models import User
from accounts.phones import phone_normalize
from project.exceptions import ApplicationError

from .models import Referral

_PROFILE_FIELDS = ("id", "phone", "ref_code", "created_at", "is_active", "is_staff", "referral__inviter__phone")


def _profile(row: dict, refs: list[str]) -> dict:
    return {
        "id": row["id"],
        "phone": row["phone"],
        "my_refs": [{"phone": phone} for phone in refs],
        "my_inviter": row["referral__inviter__phone"],
        "my_ref_code": row["ref_code"],
        "created_at": row["created_at"],
        "is_active": row["is_active"],
        "is_staff": row["is_staff"],
    }


def _profiles():
    """Every user's profile row, the invitees' phones as an array subquery (oldest first). Built
    once per process (profiles_base): building the annotated queryset cost more than running it,
    and a queryset is reusable (each filter() makes a new one)."""
    refs = (
        Referral.objects.filter(inviter_id=OuterRef("pk")).order_by("created_at", "invitee_id").values("invitee__phone")
    )
    return User.objects.annotate(refs=ArraySubquery(refs)).values(*_PROFILE_FIELDS, "refs")


profiles_base = functools.cache(_profiles)


def profile_get(*, user_id: int, active_only: bool = True) -> dict | None:
    """One user's profile in one query, whatever the number of referrals (my_profile is on the
    login path), by the function referrals_profile (migration 0005): PostgreSQL plans it once per
    connection, where the same statement sent per request was planned each time (planning cost
    more than running it) and the ORM compiled it each time (0.75 of my_profile's 1.3 ms CPU).
    The same row as profiles_base() gives for the user (a test holds them equal)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM referrals_profile(%s, %s)", [user_id, active_only])
        row = cursor.fetchone()
    if row is None:
        return None
    pk, phone, ref_code, created_at, is_active, is_staff, inviter, refs = row
    found = {
        "id": pk,
        "phone": phone,
        "ref_code": ref_code,
        "created_at": created_at,
        "is_active": is_active,
        "is_staff": is_staff,
        "referral__inviter__phone": inviter,
    }
    return _profile(found, refs)


# What a typed phone number (or a piece of one) is made of.
PHONE_SEARCH_CHARS = frozenset("0123456789+-(). ")


def profile_search_q(search: str) -> Q:
    """What a staff search matches: a referral code (any case), or, when the text is a phone
    number or a piece of one, every phone containing its digits ("221-45-67", "9162214567":
    digits match digits, whatever the country), and the whole number it spells, if it is
    one ("8 (916) 221-45-67" is +79162214567). Used by the admin API's ?search."""
    match = Q(ref_code=search.lower())
    digits = "".join(ch for ch in search if ch in "0123456789")
    if digits and set(search) <= PHONE_SEARCH_CHARS:
        # A lookup on the phone itself: PhoneField would not normalise a fragment here
        # (pattern lookups do not prepare their value), so the digits are matched as typed.
        match |= Q(phone__contains=digits)
        with contextlib.suppress(ApplicationError):  # a fragment, not a whole number
            match |= Q(phone=phone_normalize(search))
    return match


def profile_list_queryset(*, search: str | None = None):
    users = User.objects.order_by("id")
    if search:
        # PostgreSQL text cannot hold NUL: a query string with one would be a 500.
        search = search.replace("\x00", "").strip()
        if search:
            users = users.filter(profile_search_q(search))
    return users


class ProfileRows:
    """The staff list's rows as Django's paginator slices them: count() of the filtered users,
    and a page read through a subquery of its ids (in one query). A deep OFFSET then skips
    entries of the primary-key index instead of users joined with their inviters: page 2,000
    of 100,000 users, 42 -> 4 ms in PostgreSQL."""

    def __init__(self, users):
        self._users = users

    def count(self) -> int:
        return self._users.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list[dict]:
        page = User.objects.filter(pk__in=self._users.values("pk")[window])
        return list(page.order_by("id").values(*_PROFILE_FIELDS))


def profiles_for_rows(rows: list[dict]) -> list[dict]:
    """Profiles for a page of user rows: one query for all their referrals."""
    ids = [row["id"] for row in rows]
    refs: dict[int, list[str]] = {i: [] for i in ids}
    for inviter_id, phone in (
        Referral.objects.filter(inviter_id__in=ids)
        .order_by("created_at", "invitee_id")
        .values_list("inviter_id", "invitee__phone")
    ):
        refs[inviter_id].append(phone)
    return [_profile(row, refs[row["id"]]) for row in rows]


# --- the referral programme ---

_REFERRAL_FIELDS = (
    "invitee_id",
    "inviter_id",
    "inviter__phone",
    "invitee__phone",
    "created_at",
    "status",
    "signals",
    "decided_by__phone",
    "decided_at",
)


def _referral(row: dict) -> dict:
    return {
        "id": row["invitee_id"],
        "inviter": row["inviter__phone"],
        "inviter_id": row["inviter_id"],
        "invitee": row["invitee__phone"],
        "invitee_id": row["invitee_id"],
        "created_at": row["created_at"],
        "status": row["status"],
        "signals": row["signals"],
        "decided_by": row["decided_by__phone"],
        "decided_at": row["decided_at"],
    }


def referral_list_queryset(*, status: str | None = None):
    """The review queue's rows (oldest first), as dicts of `_referral`'s shape once sliced."""
    referrals = Referral.objects.order_by("created_at", "invitee_id")
    if status:
        referrals = referrals.filter(status=status)
    return referrals.values(*_REFERRAL_FIELDS)


def referrals_as_dicts(rows) -> list[dict]:
    return [_referral(row) for row in rows]


def referral_get(*, referral_id: int) -> dict | None:
    row = Referral.objects.filter(pk=referral_id).values(*_REFERRAL_FIELDS).first()
    return None if row is None else _referral(row)


def _utc_iso(value) -> str | None:
    """As the API writes datetimes (DRF: ISO 8601, "Z" for UTC)."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def referrals_for_events(*, referral_ids) -> list[dict]:
    """The webhook events' `data.referral`: JSON-ready (datetimes as strings), in id order."""
    rows = Referral.objects.filter(pk__in=referral_ids).order_by("pk").values(*_REFERRAL_FIELDS)
    return [
        {**ref, "created_at": _utc_iso(ref["created_at"]), "decided_at": _utc_iso(ref["decided_at"])}
        for ref in referrals_as_dicts(rows)
    ]


# Everyone below a user, with their depth, in one recursive query. A node can sit on a cycle
# (data written around the rules) only together with the user themselves, as each person has
# at most one inviter: never walking back into the user ends every walk.
_TREE_SQL = f"""
WITH RECURSIVE tree(id, depth) AS (
    SELECT invitee_id, 1 FROM {Referral._meta.db_table} WHERE inviter_id = %(user)s
    UNION ALL
    SELECT r.invitee_id, tree.depth + 1
    FROM {Referral._meta.db_table} r JOIN tree ON r.inviter_id = tree.id
    WHERE r.invitee_id <> %(user)s
)
SELECT count(*) FILTER (WHERE depth = 1), count(*), coalesce(max(depth), 0) FROM tree
"""


def user_stats(*, user_id: int) -> dict:
    """{direct, descendants, depth}: referrals the user made, everyone below them in the tree,
    and the longest chain below them; every link counts, whatever its status (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(_TREE_SQL, {"user": user_id})
        direct, descendants, depth = cursor.fetchone()
    return {"direct": direct, "descendants": descendants, "depth": depth}


def leaderboard(*, limit: int) -> list[dict]:
    """Users ranked by approved direct referrals (ties: the older account first); users without
    one are not ranked."""
    top = (
        Referral.objects.filter(status=Referral.Status.APPROVED)
        .values("inviter_id")
        .annotate(direct=Count("*"))
        .order_by("-direct", "inviter_id")[:limit]
    )
    rows = list(top)
    phones = dict(User.objects.filter(pk__in=[r["inviter_id"] for r in rows]).values_list("pk", "phone"))
    return [{"id": r["inviter_id"], "phone": phones[r["inviter_id"]], "direct": r["direct"]} for r in rows]
