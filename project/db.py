"""Transaction-level advisory locks, shared by the services that serialise a check-and-set."""

import zlib

from django.db import connection

# Namespaces for transaction-level advisory locks (first key of the two-int form).
# 1, 2 and 4 are taken by the functions of accounts migration 0009 (their SQL names the numbers).
LOCK_OTP_PHONE = 1
LOCK_OTP_IP = 2
LOCK_REFERRALS = 3
LOCK_OTP_TRY_IP = 4


def lock_key(key: str | int) -> int:
    """An int4 key for PostgreSQL's two-key advisory lock: strings by their CRC-32."""
    return zlib.crc32(key.encode()) - 2**31 if isinstance(key, str) else int(key)


def advisory_xact_lock(*locks: tuple[int, str | int]) -> None:
    """Serialise a check-and-set across processes until the transaction ends.

    Takes each (namespace, key) lock in the order given, in one round trip: callers that take
    several always pass them in the same order, so two requests cannot deadlock. Must run
    inside transaction.atomic(): outside one the lock would end with the statement.
    """
    if not locks:
        return
    calls = ", ".join("pg_advisory_xact_lock(%s, %s)" for _ in locks)
    params = [value for space, key in locks for value in (int(space), lock_key(key))]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", params)
