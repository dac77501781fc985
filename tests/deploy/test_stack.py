"""End to end through the production-shaped stack: `make stack` (gunicorn with the Dockerfile's
config, a Celery worker, beat, Flower, nginx with nginx/ over a self-signed certificate), driven
over HTTPS on 127.0.0.1 as a client would, then `make stack-stop`.

Fake delivery is off, so login codes come only from the files the real worker writes.
"""

import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from accounts.phones import phone_display
from tests.utils import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = ROOT / ".stack" / "e2e"
HTTPS_PORT = int(os.environ.get("STACK_HTTPS_PORT", "15343"))
HTTP_PORT = int(os.environ.get("STACK_HTTP_PORT", "15380"))
BASE = f"https://127.0.0.1:{HTTPS_PORT}"
SERVICES = ["gunicorn", "worker", "beat", "flower", "nginx"]


def _stack_database_url() -> str:
    """A database of its own next to the test run's, new on every run (no leftover limits)."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/referrals").split("?")[0]
    return base + "_stack_e2e"


def _drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def _make(target: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", target, f"STACK_DIR={STACK_DIR}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _pid(name: str) -> int | None:
    try:
        return int((STACK_DIR / "run" / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


def _group_members(pgid: int) -> set[int]:
    """Every live process in the process group `pgid` (a service and its workers)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.add(int(entry.name))
            except ProcessLookupError:
                continue
    return members


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


class Stack:
    def __init__(self, env):
        self.env = env
        self.flower_auth = ("admin", (STACK_DIR / "flower_password").read_text().strip())
        # The stack's own self-signed certificate is the only one trusted: TLS is really checked.
        self.tls = ssl.create_default_context(cafile=str(STACK_DIR / "certs" / "fullchain.pem"))
        self.client = httpx.Client(base_url=BASE, verify=self.tls, timeout=15)
        self.sent = STACK_DIR / "sent_messages"

    def manage(self, *args, **env):
        return subprocess.run(
            ["deploy/stack.sh", "manage", *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def code_from_file(self, phone: str) -> str:
        """The login code, from the file the real worker wrote for this phone."""

        def newest():
            files = sorted(self.sent.glob(f"*_{phone}_*.txt"))
            return files[-1].read_text() if files else None

        body = wait_for(newest, timeout=30)
        return re.search(r"\b(\d{4})\b", body.split("\n\n", 1)[1]).group(1)

    def login(self, phone: str) -> httpx.Client:
        answer = self.client.post("/api/v1/auth/signup/", json={"phone": phone})
        assert answer.status_code == 200, answer.text
        assert "confirmation_code" not in answer.json()
        code = self.code_from_file(phone)
        answer = self.client.post("/api/v1/auth/token/", json={"phone": phone, "confirmation_code": code})
        assert answer.status_code == 200, answer.text
        client = httpx.Client(base_url=BASE, verify=self.tls, timeout=15)
        client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
        return client


@pytest.fixture(scope="module")
def stack():
    for tool in ("nginx", "openssl", "envsubst", "curl"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            pytest.fail(f"`make stack` needs {tool} (apt-get install nginx openssl gettext-base curl)")
    database_url = _stack_database_url()
    env = {**os.environ, "STACK_DATABASE_URL": database_url, "STACK_DIR": str(STACK_DIR)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    _make("stack-stop", env)  # a previous run that was killed midway
    _drop_database(database_url)
    shutil.rmtree(STACK_DIR / "sent_messages", ignore_errors=True)
    try:
        started = _make("stack", env)
        assert started.returncode == 0, f"make stack failed:\n{started.stdout}\n{started.stderr}"
        yield Stack(env)
    finally:
        stopped = _make("stack-stop", env)
        logs = STACK_DIR / "logs"
        assert stopped.returncode == 0, f"make stack-stop failed:\n{stopped.stderr}\n(logs in {logs})"
        _drop_database(database_url)


def _phone() -> str:
    return "+7999" + "".join(secrets.choice("0123456789") for _ in range(7))


def test_a_person_signs_up_logs_in_and_an_admin_sees_the_inviter(stack):
    user_phone, admin_phone = _phone(), _phone()
    user = stack.login(user_phone)

    stack.manage("createsuperuser", "--noinput", "--phone", admin_phone, DJANGO_SUPERUSER_PASSWORD=secrets.token_hex())
    admin = stack.login(admin_phone)
    admin_code = admin.get("/api/v1/my_profile/").json()[0]["my_ref_code"]

    answer = user.patch("/api/v1/my_profile/", json={"my_inviter": admin_code.upper()})
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["my_inviter"] == admin_phone

    assert user.get("/api/v1/all_profiles/").status_code == 403
    answer = admin.get("/api/v1/all_profiles/", params={"search": user_phone[1:]})
    assert answer.status_code == 200, answer.text
    (profile,) = answer.json()["results"]
    assert profile["phone"] == user_phone
    assert profile["my_inviter"] == admin_phone
    everyone = admin.get("/api/v1/all_profiles/", params={"page_size": 100}).json()
    assert {user_phone, admin_phone} <= {p["phone"] for p in everyone["results"]}


def test_flower_behind_basic_auth_shows_the_delivery_tasks(stack):
    phone = _phone()
    assert stack.client.post("/api/v1/auth/signup/", json={"phone": phone}).status_code == 200
    stack.code_from_file(phone)

    assert stack.client.get("/flower/api/tasks").status_code == 401

    def delivered():
        answer = stack.client.get(
            "/flower/api/tasks", params={"taskname": "notifications.tasks.message_deliver_task"}, auth=stack.flower_auth
        )
        assert answer.status_code == 200, answer.text
        return [t for t in answer.json().values() if t["state"] == "SUCCESS" and "sent" in (t["result"] or "")]

    assert wait_for(delivered, timeout=20)
    workers = stack.client.get("/flower/api/workers", params={"refresh": 1}, auth=stack.flower_auth).json()
    assert any(name.startswith("stack-worker") for name in workers)


def test_pages_docs_and_static_files_come_through_nginx_with_security_headers(stack):
    home = stack.client.get("/")
    assert home.status_code == 200
    for answer in (home, stack.client.get("/swagger/"), stack.client.get("/api/v1/my_profile/")):
        assert answer.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "'unsafe-inline'" not in home.headers["content-security-policy"]
    # Each header once: Django's copies are hidden behind nginx's.
    assert len(home.headers.get_list("x-content-type-options")) == 1
    assert "nginx/" not in home.headers.get("server", "")

    swagger = stack.client.get("/swagger/")
    assert swagger.status_code == 200
    assert 'id="swagger-ui"' in swagger.text
    schema = stack.client.get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    assert "/api/v1/auth/signup/" in schema.text

    css_path = re.search(r'href="(/static/css/[^"]+\.css)"', home.text).group(1)
    css = stack.client.get(css_path)
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "max-age=2592000"  # nginx's `expires 30d`, not whitenoise
    assert css.headers["x-content-type-options"] == "nosniff"

    plain = httpx.get(f"http://127.0.0.1:{HTTP_PORT}/my_profile/?a=1", follow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["location"] == f"{BASE}/my_profile/?a=1"


def test_django_sees_the_client_address_from_nginx_never_the_clients_own_header(stack):
    probe = uuid.uuid4().hex
    answer = stack.client.get(f"/health/?probe={probe}", headers={"X-Forwarded-For": "203.0.113.9"})
    assert answer.status_code == 200
    log = STACK_DIR / "logs" / "gunicorn.log"
    line = wait_for(lambda: next((x for x in log.read_text().splitlines() if probe in x), None))
    assert line.startswith("127.0.0.1 127.0.0.1 ")  # X-Forwarded-For as nginx set it, then the peer
    assert "203.0.113.9" not in line


def test_pages_satisfy_the_content_security_policy_in_a_browser(stack):
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).exists():
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"needs chromium at {chromium}")
        pytest.skip(f"needs chromium at {chromium}")
    from playwright.sync_api import sync_playwright

    problems = []

    def browse():
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            try:
                context = browser.new_context(base_url=BASE, ignore_https_errors=True)
                page = context.new_page()
                page.on("console", lambda msg: msg.type == "error" and problems.append(f"{page.url}: {msg.text}"))
                page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
                phone = _phone()
                page.goto("/")
                page.fill("input[name=phone]", phone)
                page.locator("form button[type=submit], form input[type=submit]").first.click()
                page.wait_for_url("**/submit/**")
                page.fill("input[name=confirmation_code]", stack.code_from_file(phone))
                page.locator("form button[type=submit], form input[type=submit]").first.click()
                page.wait_for_url("**/my_profile/**")
                assert phone_display(phone) in page.content()  # the pages write it +7 999 ...
                page.goto("/swagger/")
                page.wait_for_selector(".opblock", timeout=15_000)
                page.goto("/admin/login/")
                page.wait_for_selector("input[name=username], input[name=phone]")
            finally:
                browser.close()

    # Its own thread: the browser tests' session keeps a Playwright event loop in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(browse).result(timeout=120)
    assert not problems, problems


def test_metrics_through_nginx_count_the_workers_deliveries_and_flower_is_scraped_too(stack):
    stack.login("+79995550707")  # a delivery by the worker's prefork pool
    answer = wait_for(
        lambda: (
            (found := stack.client.get("/metrics")).status_code == 200
            and 'outbox_deliveries_total{channel="file",outcome="sent"}' in found.text
            and found
        ),
        timeout=30,
    )
    assert 'otp_codes_issued_total{region="RU"}' in answer.text
    # Flower's own /metrics, behind nginx's basic auth on /flower/.
    assert stack.client.get("/flower/metrics").status_code == 401
    flower = stack.client.get("/flower/metrics", auth=stack.flower_auth)
    assert flower.status_code == 200
    assert "flower_worker_online" in flower.text


def test_the_login_endpoints_are_rate_limited_by_nginx(stack):
    # GET on a POST-only endpoint: Django answers 405 and stores nothing; nginx counts it.
    statuses = [stack.client.get("/api/v1/auth/token/").status_code for _ in range(60)]
    assert statuses[0] == 405
    assert 429 in statuses
    assert stack.client.get("/health/").status_code == 200  # other paths are not limited


def test_stack_stop_ends_exactly_the_processes_it_started(stack):
    started = {name: _pid(name) for name in SERVICES}
    assert all(started.values()), started
    members = set().union(*(_group_members(pid) for pid in started.values()))
    assert len(members) > len(SERVICES)  # gunicorn's and celery's worker children too
    # A bystander that looks like one of ours (a name-based stop would take it).
    decoy = subprocess.Popen(["bash", "-c", "exec -a 'gunicorn celery nginx decoy' sleep 300"], start_new_session=True)
    try:
        stopped = _make("stack-stop", stack.env)
        assert stopped.returncode == 0, stopped.stderr
        assert not [pid for pid in members if _alive(pid)]
        assert decoy.poll() is None
        assert not any((STACK_DIR / "run" / f"{name}.pid").exists() for name in SERVICES)
    finally:
        os.killpg(decoy.pid, signal.SIGKILL)
        decoy.wait()
