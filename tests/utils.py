import shutil
import socket
import subprocess
import time
from urllib.parse import quote

import pytest


def wait_for(predicate, timeout=15.0, interval=0.05):
    """Poll until predicate() is truthy; return its value or fail. Waiting, not timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


def task_outcomes(log_path, task_ids) -> list | None:
    """What each task returned, in the order of `task_ids`, as a Celery worker logs it at INFO
    ("Task name[id] succeeded in 0.01s: 'sent'"); None until every one has finished. Tasks keep no
    result store (the outbox row is the record), so the worker's log is where a return shows."""
    found = {}
    for line in log_path.read_text(errors="replace").splitlines():
        for task_id in task_ids:
            if f"[{task_id}] succeeded" in line:
                found[task_id] = line.rsplit(": ", 1)[-1].strip().strip("'")
    return [found[task_id] for task_id in task_ids] if len(found) == len(task_ids) else None


def database_url(settings_dict) -> str:
    """The URL of a Django database (the test database pytest-django made), for child processes.
    A unix socket folder (the embedded server of `make test`) is the host, percent-encoded."""
    db = settings_dict
    user = quote(db["USER"], safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    return f"postgres://{user}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class PrivateRedis:
    """A redis-server of the test's own on `port` (from the suite's own range), to stop and
    start again while the app runs. Used by the delivery, health and reliability tests."""

    def __init__(self, tmp_path, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.dir = tmp_path
        self.proc = None

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is taken")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while port_free(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None
