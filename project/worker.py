"""The Celery worker's consumer, sending task events in fewer publishes.

Workers send task events so Flower shows every delivery (three per task: received, started,
succeeded). Celery buffers them and flushed the buffer on the next turn of the event loop, so at
delivery rates each event was a PUBLISH of its own to Redis, waited on by the process that also
feeds the pool: a third of its time in bench/. This consumer flushes at most every
EVENTS_FLUSH_S (and whenever 24 are buffered, Celery's buffer_limit), and before the worker
stops, so Flower hears of a task at most that much later.

Selected with CELERY_WORKER_CONSUMER = "project.worker:Consumer".
"""

from celery.worker import consumer

EVENTS_FLUSH_S = 0.05


class Consumer(consumer.Consumer):
    _events_flush_due = False

    def on_send_event_buffered(self):
        if self.hub and not self._events_flush_due:
            self._events_flush_due = True
            self.hub.call_later(EVENTS_FLUSH_S, self._events_flush_later)

    def _events_flush_later(self):
        self._events_flush_due = False
        self._flush_events()

    def stop(self):
        self._flush_events()
        super().stop()

    def shutdown(self):
        self._flush_events()
        super().shutdown()
