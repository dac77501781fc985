"""A message accepted while Redis is down is delivered by the beat sweeper once Redis is back."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings

from conftest import ROOT
from notifications.models import Message
from notifications.schedule import SWEEP_TASK
from tests.utils import database_url, wait_for

from .fakes import Reply

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_a_message_enqueued_while_the_broker_is_down_is_delivered_by_the_sweeper(
    celery_start, private_redis, fake_provider, settings
):
    tg_server = fake_provider(Reply(body={"ok": True, "result": {"message_id": 9}}))
    private_redis.stop()
    env = {
        "DATABASE_URL": database_url(django_settings.DATABASES["default"]),
        "CELERY_BROKER_URL": private_redis.url,
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "1",
        "TELEGRAM_CHAT_ID": "-100555",
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_API_URL": tg_server.url,
        "OUTBOX_SWEEP_INTERVAL_S": "1",
        "OUTBOX_SWEEP_GRACE_S": "1",
    }

    # The request path (here `notify`) does not wait for Redis: the row is written, the publish fails fast.
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "manage.py", "notify", "--status=success", "--title=While Redis was down"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    enqueue_s = time.monotonic() - started
    message = Message.objects.get()
    assert message.status == "pending"

    private_redis.start()
    celery_start("worker", env=env)
    beat = celery_start("beat", env=env)

    wait_for(lambda: Message.objects.get(pk=message.pk).status == "sent", timeout=30)
    assert len(tg_server.requests) == 1
    assert "While Redis was down" in tg_server.requests[0].json["text"]
    assert SWEEP_TASK in beat.log_path.read_text()  # the beat job published it, nothing else did
    # The whole command, Django start-up included, stays quick without a broker.
    assert enqueue_s < 10
