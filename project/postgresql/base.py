"""Django's PostgreSQL backend, less two round trips: the health check and BEGIN.

The health check. With CONN_HEALTH_CHECKS Django checks a persistent connection before its first
query in each request, by sending SELECT 1: one round trip per request, a few per cent of a short
one (bench/). This check looks at the socket instead. An idle connection has nothing to read: a
connection the server ended (a restart, pg_terminate_backend, idle_session_timeout) has the
server's FATAL message or the end of the stream waiting, and a readable socket gets Django's
SELECT 1. What neither notices in time is a peer that vanished without closing (a cut network
link): SELECT 1 waits out the TCP timeouts there too.

BEGIN. psycopg opens a transaction by sending BEGIN on its own, one round trip, before the
transaction's first statement. Here psycopg stays in autocommit mode and Django's flag
(`self.autocommit`) says whether a transaction is wanted: the cursor wrappers send BEGIN before
the first statement that finds none open. A first statement without parameters (a savepoint,
project.db.advisory_xact_lock) goes in the same message as BEGIN, through the simple query
protocol; any other gets BEGIN as psycopg sends it, a round trip of its own. COMMIT and
ROLLBACK are psycopg's: they do nothing while no transaction is open.

Everything through Django's cursors (the ORM, connection.cursor(), their copy() and stream())
is inside the transaction. psycopg's own connection, used directly
(connection.connection.execute(), .cursor()), is not: inside atomic() call connection.cursor().
"""

import select

from django.db.backends.postgresql import base
from django.db.backends.postgresql.base import ServerSideCursor
from django.db.backends.utils import CursorWrapper as DjangoCursorWrapper
from psycopg import ServerCursor, pq

IDLE = pq.TransactionStatus.IDLE


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != IDLE:
            return super().is_usable()
        # poll, not select: select refuses descriptors from 1024 up, which a busy process reaches.
        poller = select.poll()
        try:
            poller.register(connection.fileno(), select.POLLIN)
            readable = bool(poller.poll(0))
        except OSError:
            return False
        return super().is_usable() if readable else True

    # --- BEGIN with the first statement -----------------------------------------------------------

    def _set_autocommit(self, autocommit):
        # psycopg never opens transactions itself; Django's self.autocommit (set by our caller,
        # set_autocommit) is what begin_needed() reads.
        if not self.connection.autocommit:
            with self.wrap_database_errors:
                self.connection.autocommit = True

    def begin_needed(self) -> bool:
        """Django wants a transaction and the server has none open yet."""
        return not self.autocommit and self.connection.pgconn.transaction_status == IDLE

    def begin_statement(self) -> str:
        """BEGIN with the connection's transaction characteristics, as psycopg would send it."""
        connection = self.connection
        parts = ["BEGIN"]
        if connection.isolation_level is not None:
            parts.append("ISOLATION LEVEL " + connection.isolation_level.name.replace("_", " "))
        if connection.read_only is not None:
            parts.append("READ ONLY" if connection.read_only else "READ WRITE")
        if connection.deferrable is not None:
            parts.append("DEFERRABLE" if connection.deferrable else "NOT DEFERRABLE")
        return " ".join(parts)

    def begin(self) -> None:
        with self.wrap_database_errors:
            self.connection.execute(self.begin_statement(), prepare=False)

    def create_cursor(self, name=None):
        if not name:
            return super().create_cursor()
        # A named cursor outlives its transaction (WITH HOLD) only in autocommit mode: Django
        # reads that from psycopg's flag, which is always on here.
        if self.settings_dict["OPTIONS"].get("server_side_binding") is True:
            cursor = self.connection.cursor(name, scrollable=False, withhold=self.autocommit)
        else:
            cursor = ServerSideCursor(self.connection, name=name, scrollable=False, withhold=self.autocommit)
        tzloader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, base.Format.TEXT)
        if self.timezone != tzloader.timezone:
            base.register_tzloader(self.timezone, cursor)
        return cursor

    def make_cursor(self, cursor):
        return CursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return CursorDebugWrapper(cursor, self)


class BeginMixin:
    """Django's cursor wrapper, sending BEGIN when the statement it runs needs one."""

    def _begin_if_needed(self):
        if self.db.begin_needed():
            self._begin()

    def _begin(self):
        self.db.validate_no_broken_transaction()
        self.db.begin()

    def _execute(self, sql, params, *ignored_wrapper_args):
        if self.db.begin_needed():
            if params is None and isinstance(sql, str) and not isinstance(self.cursor, ServerCursor):
                return self._execute_with_begin(sql)
            self._begin()
        return super()._execute(sql, params, *ignored_wrapper_args)

    def _execute_with_begin(self, sql):
        # One message, two statements (the simple query protocol); never prepared, as a prepared
        # statement holds one. The cursor then shows the caller's statement.
        db = self.db
        db.validate_no_broken_transaction()
        with db.wrap_database_errors:
            self.cursor.execute(f"{db.begin_statement()}; {sql}", prepare=False)
            self.cursor.nextset()
            return self.cursor

    def _executemany(self, sql, param_list, *ignored_wrapper_args):
        self._begin_if_needed()
        return super()._executemany(sql, param_list, *ignored_wrapper_args)

    def callproc(self, *args, **kwargs):
        self._begin_if_needed()
        return super().callproc(*args, **kwargs)

    def copy(self, *args, **kwargs):
        self._begin_if_needed()
        debug_copy = getattr(super(), "copy", None)  # the debug wrapper logs it
        return debug_copy(*args, **kwargs) if debug_copy else self.cursor.copy(*args, **kwargs)

    def stream(self, *args, **kwargs):
        self._begin_if_needed()
        return self.cursor.stream(*args, **kwargs)


class CursorWrapper(BeginMixin, DjangoCursorWrapper):
    pass


class CursorDebugWrapper(BeginMixin, base.CursorDebugWrapper):
    pass
