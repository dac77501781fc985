"""Small database helpers shared by the services."""

import zlib

from django.db import connection

# Namespaces for transaction-level advisory locks (first key of the two-int form).
LOCK_OTP_PHONE = 1
LOCK_OTP_IP = 2
LOCK_REFERRALS = 3


def advisory_xact_lock(namespace: int, key: str | int = 0) -> None:
    """Serialise a check-and-set across processes until the transaction ends.

    PostgreSQL only; SQLite (the embedded `make run`) already runs one writer at a time.
    """
    if connection.vendor != "postgresql":
        return
    if isinstance(key, str):
        key = zlib.crc32(key.encode()) - 2**31
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [namespace, key])
