"""kombu's Redis transport, made cheaper for this project's two sides of the broker.

- One redis client per channel (Channel): kombu's Redis channel builds a new `redis.Redis` for
  every command it sends outside its event loop: each publish (a signup), each ack and each
  task event (a worker). Building one copies ~170 response callbacks and cost about half of a
  publish (bench/: apply_async 1.0 -> 0.5 ms). A client holds no connection of its own
  (every command borrows one from the channel's pool) and is safe to share, so the channel
  keeps one.
- A worker's records of the messages it holds, and their acks, written in batches (QoS).
- The web process's publish of a task with Celery's message built once (task_send).

The channel class is installed as the transport's (project/celery.py) rather than selected
with broker_transport: that would turn the broker URL Flower reads into
"project.broker:Transport://".
"""

import logging
import os
import time
from dataclasses import dataclass

from celery.utils.saferepr import saferepr
from kombu.asynchronous import get_event_loop
from kombu.entity import DELIVERY_MODES
from kombu.serialization import dumps
from kombu.transport import redis, virtual
from kombu.utils import json
from kombu.utils.uuid import uuid

logger = logging.getLogger(__name__)


# How long a record of a message handed out, or of its ack, may wait for the others (see QoS).
UNACKED_FLUSH_S = 0.02


class QoS(redis.QoS):
    """kombu's Redis ack emulation, its bookkeeping written in batches.

    kombu records every message it hands to the worker (MULTI/EXEC: ZADD and HSET) and deletes
    the record on ack (MULTI/EXEC: ZREM and HDEL), each a round trip waited on by the worker's
    main process, the one that feeds the pool: half of its time at delivery rates (bench/).
    Here both wait at most UNACKED_FLUSH_S and go in one MULTI/EXEC with everything else due;
    a message acked before its record was written needs no record at all. Whatever reads the
    records (a reject with requeue, kombu's restores at shutdown and after the visibility
    timeout) writes the pending ones first.

    What a batch lost with its process (SIGKILL, a crash) costs: a message whose record was
    pending is in no Redis list, and a message whose ack was pending is restored after the
    visibility timeout and runs again. Both are safe for this project's tasks: each delivery
    is an outbox row, which the sweeper publishes again while it is pending or its claim's lease
    has run out, and whose claim refuses a second send. Outside a worker's event loop (a web
    process) the records are written at once, as kombu does.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._records: dict[str, str] = {}  # delivery tag -> kombu's record, not yet written
        self._acked: list[str] = []  # acked tags whose records were written

    def append(self, message, delivery_tag):
        delivery = message.delivery_info
        self._records[delivery_tag] = json.dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        virtual.QoS.append(self, message, delivery_tag)
        self._flush_soon()

    def ack(self, delivery_tag):
        virtual.QoS.ack(self, delivery_tag)  # the prefetch slot is free now
        if self._records.pop(delivery_tag, None) is None:
            self._acked.append(delivery_tag)
            self._flush_soon()

    def _flush_soon(self):
        if len(self._records) + len(self._acked) != 1:
            return  # a write is scheduled already, or nothing is due
        hub = get_event_loop()
        if hub is None:
            self.unacked_flush()
        else:
            hub.call_later(UNACKED_FLUSH_S, self.unacked_flush)

    def unacked_flush(self):
        records, self._records = self._records, {}
        acked, self._acked = self._acked, []
        if not records and not acked:
            return
        try:
            with self.pipe_or_acquire() as pipe:
                if records:
                    now = time.time()
                    pipe.zadd(self.unacked_index_key, dict.fromkeys(records, now))
                    pipe.hset(self.unacked_key, mapping=records)
                if acked:
                    pipe.zrem(self.unacked_index_key, *acked).hdel(self.unacked_key, *acked)
                pipe.execute()
        except Exception as exc:  # Redis is gone: see above for what that costs
            logger.warning("could not write %s message records and %s acks: %s", len(records), len(acked), exc)

    def reject(self, delivery_tag, requeue=False):
        self.unacked_flush()
        super().reject(delivery_tag, requeue)

    def restore_by_tag(self, tag, client=None, leftmost=False):
        self.unacked_flush()
        super().restore_by_tag(tag, client, leftmost)

    def restore_unacked_once(self, stderr=None):
        self.unacked_flush()
        return super().restore_unacked_once(stderr)


class Channel(redis.Channel):
    QoS = QoS
    _shared_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:  # the event loop's client, built once already (Channel.client)
            return super()._create_client(asynchronous=True)
        if self._shared_client is None:
            self._shared_client = super()._create_client()
        return self._shared_client


def redis_clients_shared() -> None:
    redis.Transport.Channel = Channel


# --- the web process's publish ----------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """What Celery would send for any call of one task, less the parts each call changes."""

    pid: int
    headers: dict
    properties: dict
    embed: dict  # the body's third item (callbacks, errbacks, chain, chord)
    queue: str
    serializer: str
    repr_size: int
    repr_levels: int


_templates: dict[str, _Template | None] = {}


def _template(task) -> _Template | None:
    """Built with Celery's own message code (amqp.create_task_message, the router), once per
    task and process. None when the task's calls need more than this module does: configured
    routes (they may look at the arguments), a non-direct exchange, per-task options that make
    each message differ (expires, time limits), another transport, eager mode."""
    app = task.app
    conf = app.conf
    if conf.task_always_eager or not conf.broker_url.startswith(("redis://", "rediss://")):
        return None
    if app.amqp.router.routes or any(
        getattr(task, option, None) for option in ("expires", "time_limit", "soft_time_limit", "priority")
    ):
        return None
    queue = app.amqp.router.route({}, task.name, (), {}, task)["queue"]
    if queue.exchange.type != "direct":  # then Celery sends to the queue by name (amqp.send_task_message)
        return None
    headers, properties, body, _ = app.amqp.create_task_message(
        "", task.name, (), {}, ignore_result=task.ignore_result, create_sent_event=False
    )
    mode = queue.exchange.delivery_mode or conf.task_default_delivery_mode  # as amqp.send_task_message
    properties["delivery_mode"] = int(DELIVERY_MODES.get(mode, mode))
    size, levels = app.amqp.argsrepr_maxsize, conf.task_repr_maxlevels
    return _Template(os.getpid(), headers, properties, body[2], queue.name, conf.task_serializer, size, levels)


def task_send(task, args: list) -> None:
    """`task.apply_async(args)` for the request path: the same message on the same queue, for
    less than half the CPU (0.5 -> 0.2 ms per call, measured in-process; a signup is ~2.3 ms).

    apply_async merges options, routes, builds and serialises every header, copies and binds
    the queue entity and checks its declaration on each call. Here Celery builds the message
    once per task and process; a call fills in what changes (the task id and the arguments) and
    hands the message to kombu's channel, which encodes the body and LPUSHes it as for any
    publish. What it leaves out: the before/after_task_publish signals, publish retries (off in
    this project: CELERY_TASK_PUBLISH_RETRY) and the parent/root ids of a call made inside a
    task, which goes through apply_async instead, as does every task _template() turns down.
    project/tests/test_broker.py holds the two messages side by side.
    """
    template = _templates.get(task.name, False)
    if template is False or (template is not None and template.pid != os.getpid()):
        template = _templates[task.name] = _template(task)
    app = task.app
    if template is None or app.current_worker_task is not None:
        task.apply_async(args=args)
        return
    task_id = uuid()
    headers = {
        **template.headers,
        "id": task_id,
        "root_id": task_id,
        "argsrepr": saferepr(args, template.repr_size, maxlevels=template.repr_levels),
    }
    properties = {**template.properties, "correlation_id": task_id, "reply_to": app.thread_oid, "delivery_info": {}}
    content_type, encoding, body = dumps((args, {}, template.embed), serializer=template.serializer)
    with app.pool.acquire(block=True) as connection:
        channel = connection.default_channel
        message = channel.prepare_message(body, 0, content_type, encoding, headers, properties)
        channel.basic_publish(message, "", template.queue)
