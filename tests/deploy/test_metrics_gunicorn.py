"""/metrics in multiprocess mode, scraped over HTTP: a gunicorn with 2 workers (deploy/gunicorn.conf.py,
PROMETHEUS_MULTIPROC_DIR) and a real Celery worker writing its own folder, which the web's
/metrics adds up (METRICS_COLLECT_DIRS) as in docker-compose.yml."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notifications.models import Message
from tests.utils import database_url, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(settings, tmp_path, transactional_db):
    """gunicorn with 2 workers on the test database; returns (base URL, its metrics folder)."""
    port = _free_port()
    web_dir, worker_dir = tmp_path / "metrics-web", tmp_path / "metrics-worker"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SENT_MESSAGES_DIR": str(settings.SENT_MESSAGES_DIR),
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "1",
        "HTTPS": "0",
        "OTP_FAKE_DELIVERY": "1",
        "OTP_DELIVERY_BACKENDS": "file",
        "TRUSTED_PROXIES": "127.0.0.1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESS_LOG": str(tmp_path / "access.log"),
        "PROMETHEUS_MULTIPROC_DIR": str(web_dir),
        "METRICS_COLLECT_DIRS": f"{web_dir},{worker_dir}",
    }
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "project.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{base}/health/", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            return False

    try:
        wait_for(up, timeout=30)
        yield base, web_dir, worker_dir
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def scrape(base) -> dict:
    answer = httpx.get(f"{base}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    families = list(text_string_to_metric_families(answer.text))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), "a family repeated: Prometheus refuses such a scrape"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


COUNTERS = [
    ("otp_codes_issued_total", {"region": "RU"}),
    ("otp_codes_used_total", {"region": "RU"}),
    ("users_created_total", {}),
    ("outbox_deliveries_total", {"channel": "file", "outcome": "sent"}),
    ("outbox_delivery_seconds_count", {"channel": "file"}),
    ("http_request_duration_seconds_count", {"view": "auth-signup", "method": "POST", "status": "200"}),
    ("http_request_duration_seconds_count", {"view": "auth-token", "method": "POST", "status": "200"}),
]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_signup_a_login_and_a_delivery_move_each_counter_by_exactly_one(gunicorn, celery_start):
    base, web_dir, worker_dir = gunicorn
    from project.celery import app

    app.control.purge()
    celery_start("worker", name="worker", env={"PROMETHEUS_MULTIPROC_DIR": str(worker_dir)})
    before = scrape(base)

    phone = "+79995557788"
    signup = httpx.post(f"{base}/api/v1/auth/signup/", json={"phone": phone}, timeout=10)
    assert signup.status_code == 200, signup.text
    code = signup.json()["confirmation_code"]
    token = httpx.post(f"{base}/api/v1/auth/token/", json={"phone": phone, "confirmation_code": code}, timeout=10)
    assert token.status_code == 200, token.text
    wait_for(lambda: Message.objects.filter(status=Message.Status.SENT).count() == 1)
    # The mark is the worker's last write before its counter; the scrape waits for the counter.
    key = ("outbox_deliveries_total", (("channel", "file"), ("outcome", "sent")))
    wait_for(lambda: scrape(base).get(key, 0) == before.get(key, 0) + 1)

    after = scrape(base)
    for name, labels in COUNTERS:
        key = (name, tuple(sorted(labels.items())))
        assert after.get(key, 0) - before.get(key, 0) == 1, (name, labels, before.get(key), after.get(key))
    # Each kind of process wrote its own folder; the web's /metrics read both.
    assert list(worker_dir.glob("counter_*.db")) and list(web_dir.glob("histogram_*.db"))


@pytest.mark.postgres
@pytest.mark.slow
def test_requests_served_by_both_workers_add_up_and_an_address_not_allowed_is_refused(gunicorn):
    base, web_dir, _ = gunicorn
    key = ("http_request_duration_seconds_count", (("method", "GET"), ("status", "200"), ("view", "health")))
    before = scrape(base).get(key, 0)
    sent = 0
    # A new connection per request, until both workers have taken some.
    deadline = time.monotonic() + 20
    while sent < 40 or (len(list(web_dir.glob("histogram_*.db"))) < 2 and time.monotonic() < deadline):
        assert httpx.get(f"{base}/health/", timeout=5).status_code == 200
        sent += 1
    assert scrape(base).get(key, 0) - before == sent
    assert len(list(web_dir.glob("histogram_*.db"))) >= 2  # two workers wrote their own files

    # The client's address as the app sees it (X-Forwarded-For from a trusted proxy) is not allowed.
    refused = httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Metrics are not served to this address."}
