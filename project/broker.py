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
from base64 import b64encode
from dataclasses import dataclass

import redis as redis_py
from celery.utils.saferepr import saferepr
from kombu.asynchronous import get_event_loop
from kombu.entity import DELIVERY_MODES
from kombu.serialization import dumps
from kombu.transport import redis, virtual
from kombu.utils import json
from kombu.utils.uuid import uuid
from redis.backoff import NoBackoff
from redis.retry import Retry

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
    """What Celery would send for any call of one task, less the parts each call changes, and
    where it goes."""

    pid: int
    client: redis_py.Redis  # a connection of its own, with the settings of kombu's pool
    key: str  # the queue's Redis list
    content: str  # the envelope's members before "headers" (the body goes first, per call)
    headers: str  # the header members every call shares, JSON
    properties: str  # the same for the properties
    embed: dict  # the body's third item (callbacks, errbacks, chain, chord)
    serializer: str
    repr_size: int
    repr_levels: int


_templates: dict[str, _Template | None] = {}


def _members(values: dict) -> str:
    """A JSON object's members without its braces, as kombu writes the whole envelope."""
    return json.dumps(values)[1:-1]


def _template(task) -> _Template | None:
    """Built with Celery's own message code (amqp.create_task_message, the router) and kombu's
    channel (its body encoding and connection settings), once per task and process. None when
    the task's calls need more than this module does: configured routes (they may look at the
    arguments), a non-direct exchange, per-task options that make each message differ (expires,
    time limits), another transport or a key prefix, eager mode."""
    app = task.app
    conf = app.conf
    if conf.task_always_eager or not conf.broker_url.startswith(("redis://", "rediss://")):
        return None
    if app.amqp.router.routes or any(
        getattr(task, option, None) for option in ("expires", "time_limit", "soft_time_limit", "priority")
    ):
        return None
    if (conf.broker_transport_options or {}).get("global_keyprefix"):
        return None
    queue = app.amqp.router.route({}, task.name, (), {}, task)["queue"]
    if queue.exchange.type != "direct":  # then Celery sends to the queue by name (amqp.send_task_message)
        return None
    headers, properties, body, _ = app.amqp.create_task_message(
        "", task.name, (), {}, ignore_result=task.ignore_result, create_sent_event=False
    )
    mode = queue.exchange.delivery_mode or conf.task_default_delivery_mode  # as amqp.send_task_message
    properties["delivery_mode"] = int(DELIVERY_MODES.get(mode, mode))
    content_type, encoding, _ = dumps(body, serializer=conf.task_serializer)
    with app.pool.acquire(block=True) as connection:
        channel = connection.default_channel
        if channel.body_encoding != "base64":
            return None
        # What prepare_message and basic_publish add (virtual.Channel), less the per-call ids.
        properties.update(
            delivery_info={"exchange": "", "routing_key": queue.name},
            priority=channel.default_priority,
            body_encoding=channel.body_encoding,
        )
        key = channel._q_for_pri(queue.name, channel._get_message_priority({"properties": properties}))
        pool = channel._get_pool()
        # The pool's checkout would notice a connection the server closed (a Redis restart); a
        # connection kept for good learns it when a command fails, and sends it again once on a
        # new one. Only then: after a timeout the first may have been queued (a repeat would be
        # harmless, the delivery's claim sends once, but it would double the wait on a hung Redis).
        pool.connection_kwargs["retry"] = Retry(NoBackoff(), 1, supported_errors=(redis_py.ConnectionError,))
        client = redis_py.Redis(connection_pool=pool, single_connection_client=True)
    for per_call in ("correlation_id", "reply_to"):
        properties.pop(per_call, None)
    for per_call in ("id", "root_id", "argsrepr"):
        headers.pop(per_call, None)
    return _Template(
        pid=os.getpid(),
        client=client,
        key=key,
        content=_members({"content-encoding": encoding, "content-type": content_type}),
        headers=_members(headers),
        properties=_members(properties),
        embed=body[2],
        serializer=conf.task_serializer,
        repr_size=app.amqp.argsrepr_maxsize,
        repr_levels=conf.task_repr_maxlevels,
    )


def task_send(task, args: list) -> None:
    """`task.apply_async(args)` for the request path: the same message on the same queue, for
    a fraction of the CPU (apply_async 0.5 ms per call; with the envelope built here a signup
    runs 6% fewer instructions than when kombu's channel built it, bench/).

    apply_async merges options, routes, builds and serialises every header, copies and binds
    the queue entity and checks its declaration on each call; then kombu's channel takes a
    connection from its pool, checks it for stray data (a poll) and serialises the envelope.
    Here Celery and kombu build the message once per task and process, and a call fills in
    what changes (the task id, the arguments and the delivery tag) and LPUSHes it on a
    connection the process keeps for this. What it leaves out: the before/after_task_publish
    signals, publish retries (off in this project: CELERY_TASK_PUBLISH_RETRY) and the
    parent/root ids of a call made inside a task, which goes through apply_async instead, as
    does every task _template() turns down. project/tests/test_broker.py holds the two
    messages side by side.
    """
    task = getattr(task, "_get_current_object", lambda: task)()  # a shared_task's proxy, once
    template = _templates.get(task.name, False)
    if template is False or (template is not None and template.pid != os.getpid()):
        template = _templates[task.name] = _template(task)
    app = task.app
    if template is None or app.current_worker_task is not None:
        task.apply_async(args=args)
        return
    task_id = uuid()
    argsrepr = saferepr(args, template.repr_size, maxlevels=template.repr_levels)
    _, _, body = dumps((args, {}, template.embed), serializer=template.serializer)
    envelope = (
        f'{{"body": "{b64encode(body.encode()).decode()}", {template.content},'
        f' "headers": {{{template.headers}, "id": "{task_id}", "root_id": "{task_id}",'
        f' "argsrepr": {json.dumps(argsrepr)}}},'
        f' "properties": {{{template.properties}, "correlation_id": "{task_id}",'
        f' "reply_to": {json.dumps(app.thread_oid)}, "delivery_tag": "{uuid()}"}}}}'
    )
    template.client.lpush(template.key, envelope)
