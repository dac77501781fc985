"""Flower sees every delivery the worker makes (workers send task events)."""

import httpx
import pytest

from notifications.services import message_enqueue
from tests.utils import port_free, wait_for

from .fakes import FLOWER_TEST_PORT

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_flower_api_lists_a_delivery_made_by_the_worker(celery_worker_process, celery_start):
    if not port_free(FLOWER_TEST_PORT):
        pytest.fail(f"port {FLOWER_TEST_PORT} is taken")
    celery_start(
        "flower",
        env={"FLOWER_BASIC_AUTH": "ops:secret"},
        args=["--address=127.0.0.1", f"--port={FLOWER_TEST_PORT}"],
    )
    api = f"http://127.0.0.1:{FLOWER_TEST_PORT}/api"
    # Flower has caught the worker's heartbeat: from here on it hears every task event.
    wait_for(lambda: httpx.get(f"{api}/workers", auth=("ops", "secret"), timeout=5).json(), timeout=30, interval=0.5)

    message = message_enqueue(channel="file", recipient="+79991234567", body="hello")

    def delivery_listed():
        tasks = httpx.get(f"{api}/tasks", auth=("ops", "secret"), timeout=5).json()
        return [
            t
            for t in tasks.values()
            if t["name"] == "notifications.tasks.message_deliver_task"
            and t["args"] == f"[{message.pk}]"
            and t["state"] == "SUCCESS"
        ]

    (task,) = wait_for(delivery_listed, timeout=30, interval=0.5)
    assert task["result"] == "'sent'"
    assert httpx.get(f"{api}/tasks", timeout=5).status_code == 401  # basic auth guards the API
