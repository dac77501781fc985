"""Small database helpers shared by the services."""

import zlib

from django.db import connection

# Namespaces for transaction-level advisory locks (first key of the two-int form).
LOCK_OTP_PHONE = 1
LOCK_OTP_IP = 2
LOCK_REFERRALS = 3


def advisory_xact_lock(*locks: tuple[int, str | int]) -> None:
    """Serialise a check-and-set across processes until the transaction ends.

    Takes each (namespace, key) lock in the order given, in one round trip: callers that take
    several always pass them in the same order, so two requests cannot deadlock.
    PostgreSQL only; SQLite (the embedded `make run`) already runs one writer at a time.
    """
    if connection.vendor != "postgresql" or not locks:
        return
    params = []
    for namespace, key in locks:
        params += [namespace, zlib.crc32(key.encode()) - 2**31 if isinstance(key, str) else key]
    calls = ", ".join(["pg_advisory_xact_lock(%s, %s)"] * len(locks))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", params)
