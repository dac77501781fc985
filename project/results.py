"""django-celery-results' backend, storing a task's result in one statement.

The stock backend stores a result with get_or_create: a SELECT, then BEGIN, INSERT and a
durable COMMIT, four round trips per task on the delivery path (bench/: a third of a delivery
worker's time). On PostgreSQL this one writes the same row with one INSERT ... ON CONFLICT
(task_id) DO UPDATE that commits without waiting for the WAL flush: a result row is a record of
the task for Flower and the admin, not a fact of the service (the outbox row is, and it is
marked durably), so a PostgreSQL crash may lose the last fraction of a second of them and
nothing else. Other databases keep the stock path.

Selected with CELERY_RESULT_BACKEND = "project.results:DatabaseBackend"; same table and model
(django_celery_results.TaskResult), so the admin, Flower and AsyncResult read it as before.
"""

from celery import states
from django.db import connections, router
from django.utils import timezone
from django_celery_results.backends import database
from django_celery_results.models import TaskResult

from .db import flush_skipped

# The columns written on every store; date_created only by the first one.
_UPDATED = (
    "status",
    "result",
    "traceback",
    "meta",
    "content_encoding",
    "content_type",
    "periodic_task_name",
    "task_name",
    "task_args",
    "task_kwargs",
    "worker",
    "date_done",
)


def _column(name: str) -> str:
    return TaskResult._meta.get_field(name).column


class DatabaseBackend(database.DatabaseBackend):
    def _store_result(self, task_id, result, status, traceback=None, request=None, using=None):
        alias = using or router.db_for_write(TaskResult)
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return super()._store_result(task_id, result, status, traceback, request, using)
        content_type, content_encoding, encoded = self.encode_content(result)
        meta = {**self._get_meta_from_request(request), "children": self.current_task_children(request)}
        _, _, encoded_meta = self.encode_content(meta)
        now = timezone.now()
        values = {
            "status": status,
            "result": encoded,
            "meta": encoded_meta,
            "content_encoding": content_encoding,
            "content_type": content_type,
            **self._get_extended_properties(request, traceback),
            "traceback": traceback,
        }
        updated = [*_UPDATED, "date_started"] if status == states.STARTED else list(_UPDATED)
        values["date_done"] = values["date_started"] = connection.ops.adapt_datetimefield_value(now)
        names = ["task_id", "date_created", *updated]
        params = [task_id, values["date_done"], *(values[name] for name in updated)]
        quote = connection.ops.quote_name
        columns = [quote(_column(name)) for name in names]
        sql = (
            f"INSERT INTO {quote(TaskResult._meta.db_table)} ({', '.join(columns)})"
            f" VALUES ({', '.join(['%s'] * len(names))})"
            f" ON CONFLICT ({columns[0]}) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in columns[2:])}"
        )
        skip_flush = flush_skipped(connection)
        if skip_flush:
            sql += f" RETURNING {skip_flush}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return result
