import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command

from accounts.models import User
from tests.utils import database_url


@pytest.mark.django_db
def test_createsuperuser_noinput_takes_the_phone_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PHONE", "8 (999) 765-43-21")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password-42")
    call_command("createsuperuser", "--noinput")
    admin = User.objects.get()
    assert admin.phone == "+79997654321"
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("a-long-admin-password-42")
    assert len(admin.ref_code) == 6


@pytest.mark.django_db
def test_createsuperuser_with_a_phone_argument(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password-42")
    call_command("createsuperuser", "--noinput", "--phone", "+79997654321")
    assert User.objects.get().is_superuser


@pytest.mark.django_db(transaction=True)
def test_createsuperuser_asks_for_phone_and_password_interactively(tmp_path):
    """Drives the real prompt through a pseudo-terminal, as an operator would."""
    import os
    import pty

    env = {**os.environ, "DATABASE_URL": database_url(settings.DATABASES["default"]), "DEBUG": "1"}
    pid, fd = pty.fork()
    if pid == 0:  # child: the command, with the terminal as its stdin/stdout
        os.execve(sys.executable, [sys.executable, "manage.py", "createsuperuser"], env)

    def read_until(output: bytes, prompt: bytes | None) -> bytes:
        """Read the terminal until `prompt` shows (None: until the command closes it)."""
        while prompt is None or prompt not in output:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        return output

    output = b""
    answers = [
        (b"Phone", b"+79997654321\n"),
        (b"Password:", b"a-long-admin-password-42\n"),
        (b"Password (again)", b"a-long-admin-password-42\n"),
    ]
    for prompt, reply in answers:
        output = read_until(output, prompt)
        os.write(fd, reply)
    output = read_until(output, None)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")
    assert b"Superuser created successfully" in output
    assert User.objects.get(phone="+79997654321").is_superuser


def test_manage_py_check_passes():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DEBUG": "1"},
    )
    assert result.returncode == 0, result.stderr
