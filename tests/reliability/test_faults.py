"""Faults with real processes: gunicorn, a Celery worker and beat, Redis and PostgreSQL.

Nothing accepted is lost: a signup answered 200 is an outbox row in PostgreSQL, and the
sweeper (beat) publishes whatever Redis never carried. The figures are printed (pytest -s).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from notifications.models import Message
from notifications.services import message_enqueue
from tests.factories import phone_spread
from tests.utils import task_outcomes, wait_for

from .servers import ROOT

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

SWEEPER = {"OUTBOX_SWEEP_INTERVAL_S": "1", "OUTBOX_SWEEP_GRACE_S": "1"}


def _signup(base_url: str, phone: str) -> httpx.Response:
    return httpx.post(f"{base_url}/api/v1/auth/signup/", json={"phone": phone}, timeout=30)


def _delivered_texts(folder) -> dict[str, str]:
    """phone -> text of the file backend's messages in `folder`."""
    texts: dict[str, str] = {}
    for path in folder.glob("*.txt") if folder.exists() else []:
        text = path.read_text()
        phone = text.split("\n", 1)[0].removeprefix("To: ")
        texts[phone] = texts.get(phone, "") + text
    return texts


def test_signups_while_redis_is_down_all_answer_200_and_are_delivered_after_it_returns(
    app_server, private_redis, celery_start, settings
):
    env = {
        "CELERY_BROKER_URL": private_redis.url,
        "OTP_FAKE_DELIVERY": "1",  # the answer carries the code, so the test can find it delivered
        "OTP_SENDS_PER_IP_PER_HOUR": "1000",
        **SWEEPER,
    }
    web = app_server(env=env)
    private_redis.stop()

    phones = [phone_spread(i, 444) for i in range(100)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: _signup(web.url, p), phones))
    elapsed = time.monotonic() - started
    statuses = Counter(a.status_code for a in answers)
    codes = {a.json()["phone"]: a.json()["confirmation_code"] for a in answers if a.status_code == 200}
    print(f"\n100 signups with Redis down: {dict(statuses)} in {elapsed:.1f} s")
    assert statuses == {200: 100}
    assert Message.objects.filter(status="pending").count() == 100

    private_redis.start()
    celery_start("worker", env=env)
    celery_start("beat", env=env)
    folder = settings.SENT_MESSAGES_DIR
    wait_for(lambda: Message.objects.filter(status="sent").count() == 100, timeout=120)
    delivered = _delivered_texts(folder)
    lost = [p for p in phones if codes[p] not in delivered.get(p, "")]
    duplicates = [p for p, text in delivered.items() if text.count("Your login code") > 1]
    print(f"messages lost: {len(lost)}, duplicates sent: {len(duplicates)}")
    assert lost == []
    assert duplicates == []


def test_a_worker_killed_mid_batch_loses_nothing_and_resends_nothing_the_provider_answered(
    celery_start, provider, settings
):
    from project.celery import app
    from tests.reliability.servers import ProviderStandIn

    stand_in: ProviderStandIn = provider(delay=0.2)
    env = {
        "SMS_PROVIDER": "smsru",
        "SMS_API_URL": stand_in.url,
        "SMS_API_KEY": "test-key",
        "SMS_RATE_PER_S": "1000",
        "OUTBOX_CLAIM_LEASE_S": "3",
        **SWEEPER,
    }
    app.control.purge()
    worker = celery_start("worker", env=env, name="doomed")
    total = 40
    messages = [message_enqueue(channel="sms", recipient="+79991234567", body=f"batch msg-{i}") for i in range(total)]

    # Kill the worker while the provider holds a request, a dozen messages into the batch.
    wait_for(lambda: len(stand_in.counts) >= 12 and stand_in.in_flight, timeout=60, interval=0.01)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    with stand_in.lock:
        answered_before_kill = {tag for tag, n in stand_in.answered.items() if n}
        in_flight_at_kill = set(stand_in.in_flight)
    # The solo worker sends one message at a time: every answered one was recorded before it died.
    assert Message.objects.filter(status="sent").count() == len(answered_before_kill)

    replacement = celery_start("worker", env=env, name="replacement")
    celery_start("beat", env=env)
    wait_for(lambda: Message.objects.filter(status="sent").count() == total, timeout=120)

    # A redelivered task for a row already sent does nothing.
    results = [app.send_task("notifications.tasks.message_deliver_task", args=[m.pk]) for m in messages[:5]]
    outcomes = wait_for(lambda: task_outcomes(replacement.log_path, [r.id for r in results]), timeout=60)
    assert outcomes == ["skipped"] * 5

    tags = {f"msg-{i}" for i in range(total)}
    lost = tags - set(stand_in.counts)
    twice = {tag for tag, n in stand_in.counts.items() if n > 1}
    print(
        f"\nworker killed after {len(answered_before_kill)} answered, {len(in_flight_at_kill)} in flight;"
        f" messages lost: {len(lost)}, sent twice: {sorted(twice)} (answered before the kill: "
        f"{sorted(twice & answered_before_kill)})"
    )
    assert lost == set()
    assert twice & answered_before_kill == set()
    assert twice <= in_flight_at_kill  # only a request the provider had not answered may repeat


def _migrate(database_url: str):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "DEBUG": "1"},
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_the_service_recovers_from_a_postgresql_restart_without_restarting_itself(
    app_server, private_postgres, celery_start, settings, tmp_path
):
    _migrate(private_postgres.url)
    env = {
        "DATABASE_URL": private_postgres.url,
        "OTP_FAKE_DELIVERY": "1",
        "OTP_SENDS_PER_IP_PER_HOUR": "100000",
        **SWEEPER,
    }
    web = app_server(env=env)
    # The production pool (prefork, as in docker-compose.yml), not the tests' usual solo pool.
    worker = celery_start("worker", env=env, args=["--pool=prefork", "--concurrency=1"])
    beat = celery_start("beat", env=env)
    pids = {"web": web.proc.pid, "worker": worker.pid, "beat": beat.pid}

    log: list[tuple[float, int, str]] = []  # (time, status, phone) of every signup + login
    stop = threading.Event()
    counter = iter(range(10**6))
    lock = threading.Lock()

    def load():
        with httpx.Client(base_url=web.url, timeout=30) as client:
            while not stop.is_set():
                with lock:
                    phone = phone_spread(next(counter), 333)
                try:
                    answer = client.post("/api/v1/auth/signup/", json={"phone": phone})
                    if answer.status_code == 200:
                        code = answer.json()["confirmation_code"]
                        body = {"phone": phone, "confirmation_code": code}
                        answer = client.post("/api/v1/auth/token/", json=body)
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0  # no answer at all
                log.append((time.monotonic(), status, phone))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sum(1 for _, s, _ in log if s == 200) >= 20, timeout=60)
    restart_started = time.monotonic()
    private_postgres.restart()
    restart_done = time.monotonic()
    # Recovered: 40 logins in a row succeed after the restart.
    wait_for(lambda: [s for t, s, _ in log if t > restart_done][-40:] == [200] * 40, timeout=60)
    stop.set()
    for thread in threads:
        thread.join(30)

    during = Counter(s for t, s, _ in log if restart_started <= t <= restart_done + 1)
    print(
        f"\nPostgreSQL restart took {restart_done - restart_started:.1f} s; {len(log)} requests, "
        f"answers around the restart: {dict(during)}, overall: {dict(Counter(s for _, s, _ in log))}"
    )
    assert web.proc.poll() is None and worker.poll() is None and beat.poll() is None
    assert {"web": web.proc.pid, "worker": worker.pid, "beat": beat.pid} == pids
    assert set(Counter(s for _, s, _ in log)) <= {200, 503}, "no 500 and no dropped connection"

    # Every code that was issued (an outbox row committed) is delivered; read on the private DB.
    import psycopg

    def undelivered():
        with psycopg.connect(private_postgres.url.replace("postgres://", "postgresql://")) as conn:
            return conn.execute(f"SELECT count(*) FROM {Message._meta.db_table} WHERE status <> 'sent'").fetchone()[0]

    wait_for(lambda: undelivered() == 0, timeout=120)
