"""The service behind a real PgBouncer in transaction mode (Debian's 1.18), on the defaults.

In transaction mode a client's next transaction may run on another server connection, so
nothing may outlive a transaction on the server: no prepared statement, no session-level SET
(DESIGN.md, "Shape"). gunicorn and a prefork Celery worker reach PostgreSQL only through the
PgBouncer; nothing about the database is configured for them but DATABASE_URL (they inherit
the environment, so `DATABASE_SERVER_SIDE_BINDING=0 pytest ...` tries the service with a knob
turned). The figures are printed (pytest -s).
"""

import re
import time
from collections import Counter

import httpx
import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from notifications.models import Message
from tests.factories import UserFactory, phone_spread
from tests.utils import wait_for

from .parallel import run_parallel

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

PARALLEL = 50
FAILURE_MARKS = ("ERROR", "Traceback", "prepared statement")


class Recorder:
    """Every answer the test got, by step: (step, status), 0 when there was no answer at all."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.seen: list[tuple[str, int]] = []

    def call(self, step: str, method: str, path: str, *, token: str | None = None, **kwargs) -> httpx.Response | None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            answer = httpx.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)
        except httpx.HTTPError:
            self.seen.append((step, 0))
            return None
        self.seen.append((step, answer.status_code))
        return answer

    def signup(self, phone: str, step: str = "signup") -> str | None:
        """The code of a signup answered 200 (fake delivery puts it in the answer)."""
        answer = self.call(step, "POST", "/api/v1/auth/signup/", json={"phone": phone})
        return answer.json()["confirmation_code"] if answer is not None and answer.status_code == 200 else None

    def login(self, phone: str, code: str, step: str = "login") -> str | None:
        body = {"phone": phone, "confirmation_code": code}
        answer = self.call(step, "POST", "/api/v1/auth/token/", json=body)
        return answer.json()["token"] if answer is not None and answer.status_code == 200 else None

    def failures(self) -> Counter:
        return Counter((step, status) for step, status in self.seen if status >= 500 or status == 0)


def _marked_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(mark in line for mark in FAILURE_MARKS)]


def _delivered(folder) -> Counter:
    """(phone, code) of every file the file backend wrote ("To: <phone>", then the text)."""
    found: Counter = Counter()
    for path in folder.glob("*.txt") if folder.exists() else []:
        text = path.read_text()
        code = re.search(r"login code: (\d{4})", text)
        found[(text.split("\n", 1)[0].removeprefix("To: "), code and code.group(1))] += 1
    return found


def test_the_api_flows_and_deliveries_work_behind_pgbouncer_in_transaction_mode(
    pgbouncer, private_redis, app_server, celery_start, settings
):
    env = {
        "DATABASE_URL": pgbouncer.url,
        "CELERY_BROKER_URL": private_redis.url,
        "OTP_FAKE_DELIVERY": "1",  # the answer carries the code, so the test can find it delivered
        "OTP_SENDS_PER_IP_PER_HOUR": "1000",  # every signup comes from 127.0.0.1
    }
    started = time.monotonic()
    web = app_server(env=env)
    # The production pool (prefork, as in docker-compose.yml), events on (celery_start's -E).
    worker = celery_start("worker", env=env, args=["--pool=prefork", "--concurrency=2"])
    api = Recorder(web.url)
    codes: dict[str, str] = {}  # phone -> the code its signup answered

    # Two users sign up and log in; A enters B's referral code; a staff user lists everyone.
    tokens = {}
    for phone in ("+79996330001", "+79996330002"):
        code = api.signup(phone)
        if code:
            codes[phone] = code
            tokens[phone] = api.login(phone, code)
    a, b = tokens.get("+79996330001"), tokens.get("+79996330002")
    profile_a = api.call("my_profile", "GET", "/api/v1/my_profile/", token=a)
    profile_b = api.call("my_profile", "GET", "/api/v1/my_profile/", token=b)
    ref_code_b = profile_b.json()[0]["my_ref_code"] if profile_b and profile_b.status_code == 200 else "unknown"
    invited = api.call("inviter", "PATCH", "/api/v1/my_profile/", token=a, json={"my_inviter": ref_code_b})
    refs_b = api.call("my_profile", "GET", "/api/v1/my_profile/", token=b)
    staff = UserFactory(is_staff=True, is_superuser=True)  # a superuser has every model permission
    staff_token = str(RefreshToken.for_user(staff).access_token)
    listed = api.call("all_profiles", "GET", "/api/v1/all_profiles/", token=staff_token)

    # Then 50 signups at once and 50 logins at once, each from a thread of its own.
    phones = [phone_spread(n, 633) for n in range(100, 100 + PARALLEL)]  # under the prefix cap
    signed_up = run_parallel([lambda phone=phone: (phone, api.signup(phone, "parallel signup")) for phone in phones])
    codes.update(answer for answer in signed_up if isinstance(answer, tuple) and answer[1])
    logged_in = run_parallel(
        [lambda p=p, c=c: api.login(p, c, "parallel login") for p, c in codes.items() if p in phones]
    )
    everyone = api.call("all_profiles", "GET", "/api/v1/all_profiles/?page_size=100", token=staff_token)
    requests_done = time.monotonic()

    pools = pgbouncer.show("POOLS")[0]
    clients = len(pgbouncer.show("CLIENTS"))
    servers = len(pgbouncer.show("SERVERS"))
    transactions = pgbouncer.show("STATS")[0]["total_xact_count"]
    statuses = Counter(status for _, status in api.seen)
    print(
        f"\n{len(api.seen)} requests through PgBouncer (transaction mode, pool {pgbouncer.pool_size}) in "
        f"{requests_done - started:.1f} s: {dict(statuses)}; failures by step: {dict(api.failures())}\n"
        f"PgBouncer: {clients} client connections on {servers} server connections, {transactions} transactions, "
        f"longest wait for a server {pools['maxwait']}.{pools['maxwait_us']:06d} s"
    )
    worker_errors = _marked_lines(worker.log_path.read_text(errors="replace"))
    web_errors = _marked_lines(web.logs())
    assert api.failures() == Counter(), (
        f"server errors or no answer behind PgBouncer: {dict(api.failures())}\n"
        + "\n".join((web_errors + worker_errors)[:20])
    )
    assert servers <= pgbouncer.pool_size < clients, "the clients' transactions shared the server connections"

    assert a and b, "the first two users logged in"
    assert profile_a.json()[0]["my_inviter"] is None
    assert invited.status_code == 200 and invited.json()[0]["my_inviter"] == "+79996330002"
    assert refs_b.json()[0]["my_refs"] == [{"phone": "+79996330001"}]
    assert listed.status_code == 200 and listed.json()["count"] == 3
    assert len(logged_in) == PARALLEL and all(isinstance(token, str) for token in logged_in)
    assert everyone.json()["count"] == User.objects.count() == 3 + PARALLEL

    # Every outbox row is delivered by the worker through PgBouncer, each code exactly once.
    assert Message.objects.count() == len(codes) == 2 + PARALLEL
    try:
        wait_for(lambda: not Message.objects.exclude(status=Message.Status.SENT).exists(), timeout=60)
    except pytest.fail.Exception:
        states = Counter(Message.objects.values_list("status", flat=True))
        worker_errors = _marked_lines(worker.log_path.read_text(errors="replace"))
        pytest.fail(f"outbox rows not sent: {dict(states)}\n" + "\n".join(worker_errors[:20]))
    delivered = _delivered(settings.SENT_MESSAGES_DIR)
    print(f"{len(codes)} codes, {sum(delivered.values())} files delivered in {time.monotonic() - started:.1f} s")
    assert delivered == Counter(codes.items()), "one file per code, none lost, none twice"
    assert _marked_lines(worker.log_path.read_text(errors="replace")) == [], "no task failed in the worker"
    assert _marked_lines(web.logs()) == [], "no error in the web process"
