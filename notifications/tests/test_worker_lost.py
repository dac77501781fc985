"""A worker killed in the middle of a send: the task is redone (acks_late + reject_on_worker_lost),
waits for the claim's lease, and delivers; nothing is dropped."""

import os
import signal
from pathlib import Path

import pytest

from notifications.services import message_enqueue
from tests.utils import wait_for

from .fakes import Reply
from .test_delivery_worker import SMS_OK

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_message_whose_worker_was_killed_mid_send_is_delivered_after_the_lease(celery_start, fake_provider):
    from project.celery import app

    app.control.purge()
    sms_server = fake_provider(Reply(body=SMS_OK, delay=3), Reply(body=SMS_OK))
    worker = celery_start(
        "worker",
        env={"SMS_API_URL": sms_server.url, "SMS_API_KEY": "k", "SMS_PROVIDER": "smsru", "OUTBOX_CLAIM_LEASE_S": "2"},
        args=["--pool=prefork", "--concurrency=1"],
    )

    message = message_enqueue(channel="sms", recipient="+79991234567", body="hello")
    wait_for(lambda: sms_server.requests, timeout=20)
    (pool_child,) = _children(worker.pid)
    os.kill(pool_child, signal.SIGKILL)

    wait_for(lambda: message.refresh_from_db() or message.status == "sent", timeout=30)
    assert message.attempts == 2
    assert len(sms_server.requests) == 2
    assert "WorkerLostError" in worker.log_path.read_text()
