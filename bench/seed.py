"""Seed the benchmark database with COPY: 100,000 users and the referral shapes the bench needs.

Runs inside a configured Django (bench/run.py). Ids are fixed so the bench knows who is
who (the constants below).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from accounts.guard import phone_prefix
from accounts.models import PhoneCode, User
from accounts.ref_codes import REF_CODE_ALPHABET, REF_CODE_LENGTH
from accounts.services import code_hash
from referrals.models import Referral

USERS = 100_000
STAFF = 1  # all_profiles caller
ZERO = 2  # no referrals
HUNDRED = 3  # 100 referrals: users 4..103
BIG = 104  # 10,000 referrals: users 105..10,104
BIG_REFS = 10_000
CHAIN_ROOT = BIG + BIG_REFS + 1  # 10,105; the chain goes down 10,000 links to CHAIN_ROOT + 10,000
CHAIN_DEPTH = 10_000
PATCH_TARGET = CHAIN_ROOT + CHAIN_DEPTH + 1  # the inviter every PATCH user enters
PATCH_FIRST = PATCH_TARGET + 1  # fresh users (no inviter) for PATCH my_profile
PATCH_USERS = 40_000  # two PATCH endpoints: signals on, and REFERRAL_REVIEW=0 side by side
TOKEN_FIRST = PATCH_FIRST + PATCH_USERS  # existing users with a seeded login code, to the end
TOKEN_CODE = "1234"


@dataclass(frozen=True)
class Seeded:
    patch_ids: list
    token_phones: list


def phone_for(user_id: int) -> str:
    return f"+7900{user_id:07d}"


def ref_code_for(user_id: int) -> str:
    """A unique code per id: the id written in the code alphabet (31**6 is far above 100,000)."""
    base = len(REF_CODE_ALPHABET)
    digits = []
    n = user_id
    for _ in range(REF_CODE_LENGTH):
        n, d = divmod(n, base)
        digits.append(REF_CODE_ALPHABET[d])
    return "".join(reversed(digits))


def _links():
    """(invitee, inviter) pairs."""
    for invitee in range(HUNDRED + 1, HUNDRED + 101):
        yield invitee, HUNDRED
    for invitee in range(BIG + 1, BIG + BIG_REFS + 1):
        yield invitee, BIG
    for depth in range(1, CHAIN_DEPTH + 1):
        yield CHAIN_ROOT + depth, CHAIN_ROOT + depth - 1


def seed() -> Seeded:
    now = timezone.now()
    start = now - timedelta(days=30)
    user_table = User._meta.db_table
    with connection.cursor() as cursor:
        columns = "id, password, is_superuser, phone, ref_code, is_active, is_staff, created_at"
        with cursor.copy(f"COPY {user_table} ({columns}) FROM STDIN") as copy:
            for user_id in range(1, USERS + 1):
                staff = user_id == STAFF
                copy.write_row(
                    (
                        user_id,
                        "!bench-unusable",
                        staff,
                        phone_for(user_id),
                        ref_code_for(user_id),
                        True,
                        staff,
                        start + timedelta(seconds=user_id),
                    )
                )
        columns = "invitee_id, inviter_id, created_at, status, signals, decided_at"
        with cursor.copy(f"COPY {Referral._meta.db_table} ({columns}) FROM STDIN") as copy:
            for n, (invitee, inviter) in enumerate(_links()):
                at = start + timedelta(seconds=n)
                copy.write_row((invitee, inviter, at, "approved", [], at))
        token_phones = [phone_for(user_id) for user_id in range(TOKEN_FIRST, USERS + 1)]
        expires = now + timedelta(days=1)
        # Each row with the country and prefix code_request gives it (the conversion watch's).
        columns = "phone, code_hash, ip_key, created_at, expires_at, attempts, country, prefix"
        with cursor.copy(f"COPY {PhoneCode._meta.db_table} ({columns}) FROM STDIN") as copy:
            for phone in token_phones:
                copy.write_row(
                    (phone, code_hash(phone=phone, code=TOKEN_CODE), "", now, expires, 0, "RU", phone_prefix(phone))
                )
        # The referral signals' shared_address reads both users' codes of the last 30 days: each
        # PATCH user asked for one from an address of their own, the inviter for 5 (bench/run.py).
        columns = "phone, code_hash, ip, ip_key, created_at, expires_at, attempts, country, prefix"
        with cursor.copy(f"COPY {PhoneCode._meta.db_table} ({columns}) FROM STDIN") as copy:
            for n, user_id in enumerate(range(PATCH_FIRST, PATCH_FIRST + PATCH_USERS)):
                ip, phone = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", phone_for(user_id)
                copy.write_row((phone, "x" * 64, ip, ip, now - timedelta(days=1), now, 1, "RU", phone_prefix(phone)))
            target = phone_for(PATCH_TARGET)
            for n in range(5):
                address = f"192.0.2.{n}"
                copy.write_row(
                    (target, "x" * 64, address, address, now - timedelta(days=n), now, 1, "RU", phone_prefix(target))
                )
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{user_table}', 'id'), {USERS})")
        # As autovacuum would after a bulk load: statistics, and the visibility map that lets
        # index-only scans skip the table.
        cursor.execute("VACUUM ANALYZE")
        # The load's pages go to disk now, not while an endpoint is measured (evicted by its
        # backends, or by a checkpoint that lands in its run).
        cursor.execute("CHECKPOINT")
    return Seeded(patch_ids=list(range(PATCH_FIRST, PATCH_FIRST + PATCH_USERS)), token_phones=token_phones)
