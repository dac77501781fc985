"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS Django checks a persistent connection before its first query in each
request, by sending SELECT 1: one round trip per request, a few per cent of a short one
(bench/). This check looks at the socket instead. An idle connection has nothing to read: a
connection the server ended (a restart, pg_terminate_backend, idle_session_timeout) has the
server's FATAL message or the end of the stream waiting, and a readable socket gets Django's
SELECT 1. What neither notices in time is a peer that vanished without closing (a cut network
link): SELECT 1 waits out the TCP timeouts there too.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        # poll, not select: select refuses descriptors from 1024 up, which a busy process reaches.
        poller = select.poll()
        try:
            poller.register(connection.fileno(), select.POLLIN)
            readable = bool(poller.poll(0))
        except OSError:
            return False
        return super().is_usable() if readable else True
