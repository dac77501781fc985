"""Shared fixtures. Services: PostgreSQL from DATABASE_URL (`make test` without it starts a private
server, project/embedded_postgres.py) and Redis on 127.0.0.1 unless CELERY_BROKER_URL says
otherwise. Without Redis the tests that need it are skipped with the reason; with
REQUIRE_SERVICES=1 (.ci/run) that is a failure."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.utils import database_url

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parent


def _redis_ok() -> bool:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return False
    import redis

    try:
        return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def _translations_compile() -> None:
    """The Russian tests need the compiled catalogue (git-ignored). `make test` builds it (make
    venv); a bare `pytest` in a fresh clone gets it here, by the same msgfmt, when it is stale."""
    msgfmt = shutil.which("msgfmt")
    for po in ROOT.glob("locale/*/LC_MESSAGES/django.po"):
        mo = po.with_suffix(".mo")
        if msgfmt and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
            subprocess.run([msgfmt, "--check-format", "-o", str(mo), str(po)], check=True)


def pytest_configure(config):
    _translations_compile()
    if REQUIRE_SERVICES and not _redis_ok():
        pytest.exit("REQUIRE_SERVICES=1 but not reachable: Redis (CELERY_BROKER_URL or 127.0.0.1:6379)", returncode=3)


def pytest_collection_modifyitems(config, items):
    redis_ok = None
    for item in items:
        if "redis" in item.keywords:
            if redis_ok is None:
                redis_ok = _redis_ok()
            if not redis_ok:
                item.add_marker(pytest.mark.skip(reason="needs Redis: start it or set CELERY_BROKER_URL"))


@pytest.fixture(autouse=True)
def _sent_messages_dir(tmp_path, settings):
    """Each test writes its delivered messages into its own folder."""
    settings.SENT_MESSAGES_DIR = tmp_path / "sent_messages"
    return settings.SENT_MESSAGES_DIR


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def user(db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def auth_api(user):
    """An API client logged in as `user` with a real access JWT."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    client.user = user
    return client


@pytest.fixture
def staff_api(db):
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import UserFactory

    # Staff as the admin API expects them: Django's view/change/delete permissions on users.
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["view_user", "change_user", "delete_user"]
        )
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff).access_token}")
    client.user = staff
    return client


def _celery_stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    proc.log_file.close()


@pytest.fixture
def celery_start(transactional_db, settings, tmp_path):
    """Start real Celery processes on the test database: `celery_start("worker" | "beat" |
    "flower", env={...}, args=[...])`. They are stopped at the end of the test.

    `env` adds to the process environment (provider URLs, a private broker...). Each process
    gets a `log_path`; a worker is returned once it says "ready.", beat once it starts, and
    flower once its port answers. Tests must commit their rows (transactional_db).
    """
    started = []

    def start(kind: str, *, env: dict | None = None, args: list | None = None, name: str | None = None):
        full_env = {
            **os.environ,
            "DATABASE_URL": database_url(settings.DATABASES["default"]),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SENT_MESSAGES_DIR": str(settings.SENT_MESSAGES_DIR),
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "1",
            **(env or {}),
        }
        name = name or f"{kind}{len(started)}"
        command = [sys.executable, "-m", "celery", "-A", "project", kind]
        if kind == "worker":
            command += ["--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle", "-E"]
            command += ["-n", f"test-{os.getpid()}-{name}@%h"]
            ready = "ready."
        elif kind == "beat":
            command += ["--loglevel=INFO", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
            command += ["--pidfile", str(tmp_path / f"{name}.pid")]
            ready = "beat: Starting"
        else:
            ready = "Visit me at"
        log_path = tmp_path / f"{name}.log"
        log = open(log_path, "w")  # noqa: SIM115 (closed by _celery_stop)
        proc = subprocess.Popen(
            command + (args or []),
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_file, proc.log_path = log, log_path
        started.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ready in log_path.read_text():
                return proc
            if proc.poll() is not None:
                pytest.fail(f"celery {kind} exited:\n" + log_path.read_text())
            time.sleep(0.1)
        pytest.fail(f"celery {kind} did not start:\n" + log_path.read_text())

    yield start
    for proc in reversed(started):
        _celery_stop(proc)


@pytest.fixture
def celery_worker_process(celery_start):
    """A real `celery worker` process on Redis, using the test database.

    Tests that use it must commit their rows (transactional_db) so the worker can see them.
    """
    from project.celery import app

    app.control.purge()
    return celery_start("worker", name="worker")
