"""The Makefile as a new user meets it: make help, make run's PORT/HOST and a taken port, a missing
or old Python, make superuser."""

import os
import re
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.utils import database_url, wait_for

ROOT = Path(__file__).resolve().parents[2]


def make(*args, env=None, timeout=60):
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_help_names_every_target_with_one_line():
    phony = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(".PHONY:"):
            phony.update(line.split(":", 1)[1].split())
    done = make("help")
    assert done.returncode == 0, done.stderr
    listed = dict(re.findall(r"^  make (\S+)\s+(.+)$", done.stdout, flags=re.M))
    assert phony <= set(listed), phony - set(listed)
    assert all(text.strip() for text in listed.values())
    assert "PYTHON=" in done.stdout and "PORT=" in done.stdout
    # Plain `make` is the list, not a server.
    assert make().stdout == done.stdout


def test_make_run_says_when_the_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = make("run", f"PORT={port}", env={"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"})
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is taken" in done.stderr
    assert "make run PORT=" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_make_run_serves_on_the_port_and_host_given(settings):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(settings.DATABASES["default"])}
    server = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", "HOST=127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def health():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2) as answer:
                    return answer.status == 200
            except OSError:
                return False

        assert wait_for(health, timeout=60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_missing_python_is_named_with_the_way_out(tmp_path):
    done = make("venv", "PYTHON=python3-not-here", f"VENV={tmp_path}/venv")
    assert done.returncode != 0
    assert "no 'python3-not-here' found" in done.stderr
    assert "PYTHON=" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_an_old_python_is_named_with_its_version(tmp_path):
    # A stand-in for Python 3.9: answers the version check as 3.9 would.
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\ncase "$2" in *platform*) echo 3.9.18;; *) exit 1;; esac\n')
    old.chmod(0o755)
    done = make("venv", f"PYTHON={old}", f"VENV={tmp_path}/venv")
    assert done.returncode != 0
    assert "is Python 3.9.18; 3.11 or newer is needed" in done.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.django_db(transaction=True)
def test_make_superuser_makes_an_admin_without_debug_or_a_secret_key_set(settings):
    from accounts.models import User

    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env.update(
        DATABASE_URL=database_url(settings.DATABASES["default"]),
        DJANGO_SUPERUSER_PHONE="8 999 000-11-22",
        DJANGO_SUPERUSER_PASSWORD="a-long-admin-password-42",
    )
    done = subprocess.run(
        ["make", "--no-print-directory", "superuser"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    admin = User.objects.get(phone="+79990001122")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("a-long-admin-password-42")
