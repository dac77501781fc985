import base64
import copy
import json
import socket
import time
import uuid

import pytest
import redis
from celery import Celery
from django.conf import settings
from kombu import Queue
from kombu.asynchronous import Hub, get_event_loop, set_event_loop

from project import broker
from project.broker import Channel, task_send
from project.celery import app

pytestmark = pytest.mark.redis


def test_a_redis_channel_sends_its_commands_through_one_client():
    # Guards project/broker.py against a kombu upgrade that stops calling the override.
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        assert channel._create_client() is channel._create_client()


def test_messages_published_through_the_shared_client_reach_the_queue():
    queue = Queue("broker-test-shared-client")
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        producer = app.amqp.Producer(channel)
        try:
            for n in range(3):
                producer.publish({"n": n}, routing_key=queue.name, declare=[queue], serializer="json")
                shared = channel._shared_client
                assert shared is not None, "kombu published without asking the channel for a client"
            received = [queue(channel).get(no_ack=True).payload for _ in range(3)]
        finally:
            queue(channel).delete()
    assert received == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert channel._shared_client is shared  # one client for all three publishes
    # The broker URL Flower reads keeps its scheme (it picks its broker API by it).
    assert app.connection_for_write().as_uri().startswith("redis://")


# --- task_send: apply_async's message for less ---------------------------------------------------


def _pop(client, queue):
    """The message on the queue as a dict, its body decoded."""
    raw = client.rpop(queue)
    assert raw is not None, f"nothing on {queue}"
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def _ids_blanked(message):
    """The same message with the fields that differ between any two calls blanked."""
    message = copy.deepcopy(message)
    task_id = message["headers"]["id"]
    assert message["headers"]["root_id"] == message["properties"]["correlation_id"] == task_id
    for part, key in [("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id")]:
        message[part][key] = "<task id>"
    message["properties"]["delivery_tag"] = "<tag>"
    return message


@pytest.fixture
def celery_queue():
    """The default queue's Redis list, emptied before and after (nothing consumes it here)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = app.conf.task_default_queue
    client.delete(queue)
    yield client, queue
    client.delete(queue)
    client.close()


def test_task_send_queues_the_message_apply_async_queues(celery_queue):
    from notifications.tasks import message_deliver_task

    client, queue = celery_queue
    message_deliver_task.apply_async(args=[41])
    expected = _pop(client, queue)
    task_send(message_deliver_task, [41])
    sent = _pop(client, queue)
    assert broker._templates[message_deliver_task.name] is not None  # not apply_async again

    assert sent["headers"]["id"] != expected["headers"]["id"]  # each call its own id
    assert sent["properties"]["delivery_tag"] != expected["properties"]["delivery_tag"]
    assert _ids_blanked(sent) == _ids_blanked(expected)
    assert sent["body"] == [[41], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    assert sent["headers"]["argsrepr"] == "[41]"
    assert client.llen(queue) == 0


def test_task_send_builds_its_template_once_per_process(celery_queue, monkeypatch):
    from notifications.tasks import message_deliver_task

    client, queue = celery_queue
    broker._templates.clear()
    built = []
    real = broker._template
    monkeypatch.setattr(broker, "_template", lambda task: built.append(task.name) or real(task))
    for n in range(3):
        task_send(message_deliver_task, [n])
    assert built == [message_deliver_task.name]
    # A forked process (gunicorn's workers) builds its own: the origin header names the process.
    monkeypatch.setattr(broker.os, "getpid", lambda: -1)
    task_send(message_deliver_task, [3])
    assert built == [message_deliver_task.name] * 2
    assert [_pop(client, queue)["body"][0] for _ in range(4)] == [[0], [1], [2], [3]]


def test_task_send_leaves_tasks_it_cannot_copy_to_apply_async(monkeypatch):
    from notifications.tasks import message_deliver_task

    sent = []
    monkeypatch.setattr(message_deliver_task, "apply_async", lambda args: sent.append(args))
    monkeypatch.setattr(message_deliver_task, "expires", 60)  # each message would differ
    broker._templates.clear()
    task_send(message_deliver_task, [7])
    assert sent == [[7]]
    broker._templates.clear()


def test_task_send_inside_a_task_goes_through_apply_async(monkeypatch):
    # apply_async records the calling task as parent and root; the template has neither.
    from notifications.tasks import message_deliver_task

    sent = []
    monkeypatch.setattr(message_deliver_task, "apply_async", lambda args: sent.append(args))
    monkeypatch.setattr(type(app), "current_worker_task", property(lambda self: object()))
    task_send(message_deliver_task, [8])
    assert sent == [[8]]


def test_task_send_raises_at_once_when_the_broker_refuses():
    # message_publish turns the error into a pending row for the sweeper (notifications tests).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    closed = Celery("broker-down", broker=f"redis://127.0.0.1:{port}/0")
    closed.conf.update(broker_connection_timeout=1, broker_transport_options={"socket_connect_timeout": 1})

    @closed.task(name="broker-down.noop")
    def noop(n):
        return n

    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        task_send(noop, [1])
    assert "Connection refused" in str(caught.value) or isinstance(caught.value, ConnectionError)
    assert time.monotonic() - started < 5


def test_task_send_keeps_one_connection_and_takes_it_back_after_redis_drops_it(celery_queue):
    from notifications.tasks import message_deliver_task

    client, queue = celery_queue
    task_send(message_deliver_task, [1])
    task_send(message_deliver_task, [2])
    own = broker._templates[message_deliver_task.name].client
    connection_id = own.client_id()  # the connection it keeps, asked on that connection
    assert next(c for c in client.client_list() if c["id"] == str(connection_id))["cmd"] == "client|id"
    client.client_kill_filter(_id=connection_id)  # Redis restarted, a proxy timed out: it is gone
    task_send(message_deliver_task, [3])
    assert own is broker._templates[message_deliver_task.name].client
    assert own.client_id() != connection_id  # a new connection
    assert [_pop(client, queue)["body"][0] for _ in range(3)] == [[1], [2], [3]]


# --- QoS: the worker's records of the messages it holds, written in batches ----------------------


@pytest.fixture
def held():
    """A queue with three messages, taken (not acked) through a channel as a worker takes them."""
    queue = Queue(f"broker-test-qos-{uuid.uuid4().hex}")
    connection = app.connection_for_write()
    channel = connection.default_channel
    bound = queue(channel)
    bound.declare()
    producer = app.amqp.Producer(channel)
    for n in range(3):
        producer.publish({"n": n}, routing_key=queue.name, serializer="json")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield channel, bound, client
    connection.release()  # closing the channel restores what it still holds: before the delete
    client.delete(queue.name)
    client.close()


def _records(client, channel, *messages):
    """Which of these messages kombu's record says the worker holds (the key is broker-wide)."""
    tags = [message.delivery_tag for message in messages]
    held = [client.hexists(channel.unacked_key, tag) for tag in tags]
    indexed = [client.zscore(channel.unacked_index_key, tag) is not None for tag in tags]
    assert held == indexed
    return {tag for tag, is_held in zip(tags, held, strict=True) if is_held}


def test_outside_an_event_loop_records_and_acks_are_written_at_once(held):
    channel, bound, client = held
    assert get_event_loop() is None
    message = bound.get(no_ack=False)
    assert _records(client, channel, message) == {message.delivery_tag}
    message.ack()
    assert _records(client, channel, message) == set()


@pytest.fixture
def hub():
    """A worker's event loop, as kombu finds it (get_event_loop)."""
    loop = Hub()
    set_event_loop(loop)
    yield loop
    set_event_loop(None)


def test_in_an_event_loop_they_wait_and_go_together(held, hub):
    channel, bound, client = held
    first, second = bound.get(no_ack=False), bound.get(no_ack=False)
    assert _records(client, channel, first, second) == set()  # pending, one write scheduled
    assert len(hub.timer) == 1
    first.ack()  # acked before its record was written: it never will be
    channel.qos.unacked_flush()
    assert _records(client, channel, first, second) == {second.delivery_tag}
    second.ack()
    assert _records(client, channel, second) == {second.delivery_tag}  # the ack waits too
    channel.qos.unacked_flush()
    assert _records(client, channel, first, second) == set()


def test_a_reject_with_requeue_reads_the_pending_record(held, hub):
    # Celery rejects with requeue when a pool process dies mid-task (task_reject_on_worker_lost).
    channel, bound, client = held
    message = bound.get(no_ack=False)
    body = message.payload
    message.reject(requeue=True)
    assert _records(client, channel, message) == set()
    back = [bound.get(no_ack=True).payload for _ in range(3)]
    assert sorted(m["n"] for m in back) == [0, 1, 2] and body in back


def test_a_shutdown_restores_what_was_not_acked_and_writes_the_acks(held, hub):
    channel, bound, client = held
    done, unfinished = bound.get(no_ack=False), bound.get(no_ack=False)
    done_n, unfinished_n = done.payload["n"], unfinished.payload["n"]
    channel.qos.unacked_flush()
    done.ack()
    channel.qos.restore_unacked_once()
    assert _records(client, channel, done, unfinished) == set()
    back = sorted(bound.get(no_ack=True).payload["n"] for _ in range(2))
    assert back == sorted({0, 1, 2} - {done_n}) and unfinished_n in back
    assert bound.get(no_ack=True) is None  # the acked one is not back
