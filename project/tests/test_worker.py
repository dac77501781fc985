"""project/worker.py: a prefork worker as deployed sends every task event, in fewer publishes."""

import base64
import json
import os
import signal
import threading
import time

import pytest
import redis
from django.conf import settings

from notifications.models import Message
from notifications.services import message_enqueue
from project.celery import app
from project.worker import Consumer
from tests.utils import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_the_worker_uses_this_consumer():
    from celery.utils.imports import symbol_by_name

    assert symbol_by_name(app.conf.worker_consumer) is Consumer


class EventTap:
    """Everything published on the events exchange, as Redis subscribers receive it."""

    def __init__(self):
        self.client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.pubsub = self.client.pubsub()
        self.pubsub.psubscribe("*celeryev*")
        self.publishes: list[list[dict]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopped.is_set():
            item = self.pubsub.get_message(timeout=0.1)
            if not item or item["type"] != "pmessage":
                continue
            envelope = json.loads(item["data"])
            body = envelope["body"]
            if envelope["properties"].get("body_encoding") == "base64":
                body = base64.b64decode(body)
            events = json.loads(body)
            self.publishes.append(events if isinstance(events, list) else [events])

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        self.pubsub.close()
        self.client.close()


def _events_by_message(publishes, ids):
    events = [e for batch in publishes for e in batch if e["type"].startswith("task-")]
    names = {e["uuid"]: e["args"] for e in events if e["type"] == "task-received"}
    by_message = {f"[{pk}]": set() for pk in ids}
    for event in events:
        args = names.get(event["uuid"])
        if args in by_message:
            by_message[args].add(event["type"])
    return by_message, len(events)


@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_sends_every_task_event_in_batches_and_flushes_them_when_it_stops(celery_start):
    app.control.purge()
    tap = EventTap()
    all_three = {"task-received", "task-started", "task-succeeded"}
    try:
        worker = celery_start("worker", args=["--pool=prefork", "--concurrency=2"], name="events")
        messages = [message_enqueue(channel="file", recipient="+79991234567", body=f"event {i}") for i in range(30)]
        ids = [m.pk for m in messages]
        wait_for(lambda: Message.objects.filter(pk__in=ids, status="sent").count() == len(ids), timeout=60)
        os.killpg(worker.pid, signal.SIGTERM)  # a warm shutdown right after the last delivery
        worker.wait(timeout=30)
        deadline = time.monotonic() + 10  # the tap reads what was published before the exit
        while time.monotonic() < deadline:
            by_message, _ = _events_by_message(list(tap.publishes), ids)
            if all(types == all_three for types in by_message.values()):
                break
            time.sleep(0.1)
    finally:
        tap.close()

    task_publishes = [batch for batch in tap.publishes if any(e["type"].startswith("task-") for e in batch)]
    by_message, n_events = _events_by_message(task_publishes, ids)
    missing = {args: types for args, types in by_message.items() if types != all_three}
    assert missing == {}, f"tasks without all three events: {missing}"
    # Celery alone published each event in a message of its own at this pace.
    assert len(task_publishes) < n_events / 2, (len(task_publishes), n_events)
