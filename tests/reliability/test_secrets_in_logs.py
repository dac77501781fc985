"""Login codes and tokens never reach a log: not Django's, not gunicorn's, not the worker's,
at DEBUG level, over a whole signup -> delivery -> login -> refresh -> logout. The outbox row
keeps the code only until it is delivered."""

import logging
import re

import httpx
import pytest
from rest_framework.test import APIClient

from notifications.models import Message
from tests.utils import wait_for

SIGNUP = "/api/v1/auth/signup/"
TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
PHONE = "+79991234567"


def leaked(secret: str, text: str) -> bool:
    """The secret as a token of its own (a code "2026" inside a date is not a leak)."""
    return re.search(rf"(?<![\w:,.-]){re.escape(secret)}(?![\w:,.-])", text) is not None


def _code_from_files(folder) -> str:
    texts = [p.read_text() for p in folder.glob("*.txt")] if folder.exists() else []
    found = [m.group(1) for t in texts for m in [re.search(r"login code: (\d{4})", t)] if m]
    return found[-1] if found else ""


@pytest.mark.django_db
def test_a_whole_login_in_process_logs_neither_the_code_nor_a_token(caplog, settings):
    settings.OTP_FAKE_DELIVERY = True  # the test reads the code from the answer
    caplog.set_level(logging.DEBUG)
    client = APIClient()
    code = client.post(SIGNUP, {"phone": PHONE}, format="json").json()["confirmation_code"]
    wrong = "0000" if code != "0000" else "1111"
    assert client.post(TOKEN, {"phone": PHONE, "confirmation_code": wrong}, format="json").status_code == 400
    tokens = client.post(TOKEN, {"phone": PHONE, "confirmation_code": code}, format="json").json()
    rotated = client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()
    client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")  # blacklisted: a logged 400
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated['token']}")
    assert client.get("/api/v1/my_profile/").status_code == 200
    assert client.post(LOGOUT, {"refresh": rotated["refresh"]}, format="json").status_code == 205

    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records  # the flow did log (4xx warnings at least)
    secrets = [code, tokens["token"], tokens["refresh"], rotated["token"], rotated["refresh"]]
    assert [s for s in secrets if leaked(s, messages)] == []


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_gunicorn_and_the_worker_at_debug_level_log_neither_the_code_nor_a_token(
    app_server, celery_start, settings, tmp_path
):
    from project.celery import app

    app.control.purge()
    env = {"LOG_LEVEL": "DEBUG", "OTP_FAKE_DELIVERY": "0"}  # production answers: the code only in the delivery
    worker = celery_start("worker", env=env, args=["--loglevel=DEBUG"])
    web = app_server(env=env)
    with httpx.Client(base_url=web.url, timeout=30) as client:
        answer = client.post(SIGNUP, json={"phone": PHONE})
        assert answer.status_code == 200
        assert "confirmation_code" not in answer.json()
        code = wait_for(lambda: _code_from_files(settings.SENT_MESSAGES_DIR), timeout=60)
        tokens = client.post(TOKEN, json={"phone": PHONE, "confirmation_code": code}).json()
        rotated = client.post(REFRESH, json={"refresh": tokens["refresh"]}).json()
        headers = {"Authorization": f"Bearer {rotated['token']}"}
        assert client.get("/api/v1/my_profile/", headers=headers).status_code == 200
        assert client.post(LOGOUT, json={"refresh": rotated["refresh"]}, headers=headers).status_code == 205

    wait_for(lambda: Message.objects.filter(status="sent").exists(), timeout=30)
    logs = web.logs() + worker.log_path.read_text()
    assert "message_deliver_task" in logs  # the worker's DEBUG log is really there
    secrets = [code, tokens["token"], tokens["refresh"], rotated["token"], rotated["refresh"]]
    assert [s for s in secrets if leaked(s, logs)] == []
    # Delivered: the outbox row no longer holds the text with the code.
    assert not Message.objects.filter(body__contains=code).exists()
