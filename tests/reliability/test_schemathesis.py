"""Schemathesis against the served OpenAPI schema (/api/schema/), every check, a bounded number
of examples: no 5xx, no answer outside the schema, no invalid input accepted.

The app runs in gunicorn (DEBUG off) on the test database with 30 users and a staff token; the
staff user has an id the fuzzer will not guess, so DELETE/PATCH hit the others (until the
stateful phase, last, follows the list's ids to it: later calls then get the documented 401).
SCHEMATHESIS_MAX_EXAMPLES (default 40) and SCHEMATHESIS_SEED tune the run.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from referrals.models import Referral
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261127")
STAFF_ID = 2_000_000_123


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(app_server, tmp_path):
    users = [UserFactory() for _ in range(30)]
    for invitee, inviter in zip(users[1::2], users[::2], strict=False):
        Referral.objects.create(invitee=invitee, inviter=inviter)
    # A superuser: every model permission, so the staff API's answers beyond 403 are reached.
    staff = User.objects.create_user(phone="+79990009999", is_staff=True, is_superuser=True, pk=STAFF_ID)
    token = RefreshToken.for_user(staff).access_token
    # No broker: delivery runs in-process (file backend), so nothing piles up in Redis.
    web = app_server(env={"CELERY_BROKER_URL": "", "OTP_SENDS_PER_IP_PER_HOUR": "100000"})

    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color"]
    command += ["run", f"{web.url}/api/schema/", "--checks", "all", "--max-examples", str(MAX_EXAMPLES)]
    command += ["--seed", SEED, "--workers", "1", "--generation-database", "none", "--header"]
    command += [f"Authorization: Bearer {token}", "--report", "junit", "--report-dir", str(tmp_path / "report")]
    # Run in tmp_path: schemathesis keeps a crash cache (.schemathesis/) in its working folder.
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr

    generated = re.search(r"(\d+) generated", output)
    failures = re.search(r"(\d+) unique failures", output)
    print(
        f"\nschemathesis: {generated.group(1) if generated else '?'} examples run, "
        f"{failures.group(1) if failures else 0} failures found (max {MAX_EXAMPLES} per operation, seed {SEED})"
    )
    assert result.returncode == 0, output[-20000:]
    assert generated and int(generated.group(1)) > 100
    assert "Internal Server Error" not in web.logs()
