"""Security settings as production gets them: a fresh process with DEBUG off (no pytest, so
no test defaults), the deploy check, token lifetimes, and who may open the admin.

Token rotation, blacklisting and the 15-minute default are tested request by request in
accounts/tests/test_tokens.py; the staff API's 401/403 in referrals/tests/test_apis.py.
"""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories import UserFactory

from .servers import ROOT

PROD = {"DEBUG": "0", "SECRET_KEY": "prod-like-key-" + "0123456789abcdef" * 3, "ALLOWED_HOSTS": "example.org"}
SETTINGS = [
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "X_FRAME_OPTIONS",
    "OTP_FAKE_DELIVERY",
    "OTP_TTL_S",
    "OTP_MAX_ATTEMPTS",
    "OTP_MAX_ATTEMPTS_PER_IP",
    "OTP_RESEND_COOLDOWN_S",
    "OTP_SENDS_PER_PHONE_PER_HOUR",
    "OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR",
    "OTP_SENDS_PER_IP_PER_HOUR",
    "OTP_IPV6_PREFIX",
    "OTP_TRIES_PER_IP_PER_HOUR",
    "TRUSTED_PROXIES",
    "OTP_ALLOWED_REGIONS",
    "OTP_ALLOWED_NUMBER_TYPES",
    "OTP_PREFIX_FREE_DIGITS",
    "OTP_SENDS_PER_PREFIX_PER_HOUR",
    "OTP_SMS_BUDGET_PER_HOUR",
    "OTP_SMS_BUDGET_PER_DAY",
    "OTP_CONVERSION_MIN_CODES",
    "OTP_CONVERSION_MIN_RATE",
    "OTP_TEST_NUMBERS",
]
SCRIPT = f"""
import json, django
django.setup()
from django.conf import settings
out = {{name: getattr(settings, name) for name in {SETTINGS!r}}}
out["ACCESS_S"] = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
out["REFRESH_S"] = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds()
out["ROTATE"] = settings.SIMPLE_JWT["ROTATE_REFRESH_TOKENS"]
out["BLACKLIST"] = settings.SIMPLE_JWT["BLACKLIST_AFTER_ROTATION"]
print(json.dumps(out))
"""


def _clean_env(env: dict) -> dict:
    """Only what the process needs to run, plus `env`: no .env file values leak in because
    django-environ does not override what is set, so every knob is set or absent on purpose."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return {**keep, "DJANGO_SETTINGS_MODULE": "project.settings", **env}


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_clean_env(env), capture_output=True, text=True, timeout=120
    )


def _manage(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=_clean_env(env), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def production():
    if (ROOT / ".env").exists():
        pytest.skip(".env would feed the production process")  # CI clones have none
    result = _python(SCRIPT, PROD)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_cookies_are_secure_and_https_is_enforced(production):
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31536000
    assert production["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert production["X_FRAME_OPTIONS"] == "DENY"


def test_production_defaults_are_the_documented_figures(production):
    assert production["OTP_FAKE_DELIVERY"] is False
    assert production["ACCESS_S"] == 15 * 60
    assert production["REFRESH_S"] == 14 * 86400
    assert production["ROTATE"] is True and production["BLACKLIST"] is True
    assert production["OTP_TTL_S"] == 300
    assert production["OTP_MAX_ATTEMPTS"] == 10
    assert production["OTP_MAX_ATTEMPTS_PER_IP"] == 5
    assert production["OTP_RESEND_COOLDOWN_S"] == 60
    assert production["OTP_SENDS_PER_PHONE_PER_HOUR"] == 10
    assert production["OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR"] == 5
    assert production["OTP_SENDS_PER_IP_PER_HOUR"] == 20
    assert production["OTP_IPV6_PREFIX"] == 64
    assert production["OTP_TRIES_PER_IP_PER_HOUR"] == 50
    assert production["TRUSTED_PROXIES"] == []  # X-Forwarded-For is ignored until a proxy is named
    # The fraud guard (issue 20).
    assert production["OTP_ALLOWED_REGIONS"] == ["RU"]
    assert production["OTP_ALLOWED_NUMBER_TYPES"] == ["mobile", "fixed-line-or-mobile"]
    assert (production["OTP_PREFIX_FREE_DIGITS"], production["OTP_SENDS_PER_PREFIX_PER_HOUR"]) == (4, 10)
    assert (production["OTP_SMS_BUDGET_PER_HOUR"], production["OTP_SMS_BUDGET_PER_DAY"]) == (300, 3000)
    assert (production["OTP_CONVERSION_MIN_CODES"], production["OTP_CONVERSION_MIN_RATE"]) == (20, 0.2)
    assert production["OTP_TEST_NUMBERS"] == {}


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"DEBUG": "0", "ALLOWED_HOSTS": "example.org"}, "SECRET_KEY"),
        ({**PROD, "OTP_DELIVERY_BACKENDS": "sms"}, "SMS_API_KEY"),
        ({**PROD, "TELEGRAM_ALERTS": "1"}, "TELEGRAM_BOT_TOKEN"),
        ({**PROD, "TELEGRAM_ALERTS": "1", "TELEGRAM_BOT_TOKEN": "1:x"}, "TELEGRAM_CHAT_ID"),
        ({**PROD, "REFERRAL_WEBHOOK_URL": "https://hooks.example.org/in"}, "REFERRAL_WEBHOOK_SECRET"),
    ],
)
def test_production_refuses_to_start_without_a_secret_it_needs(env, missing):
    if (ROOT / ".env").exists():
        pytest.skip(".env would feed the production process")
    result = _python("import django; django.setup()", env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


@pytest.mark.parametrize(
    "weak",
    ["s" * 50, "short-but-varied-0123456789", "abcd" * 13, "django-insecure-" + "0123456789abcdefghij" * 3],
    ids=["one_character", "short", "four_characters_repeated", "django_insecure_prefix"],
)
def test_production_refuses_to_start_with_a_weak_secret_key_and_says_how_to_make_one(weak):
    if (ROOT / ".env").exists():
        pytest.skip(".env would feed the production process")
    result = _python("import django; django.setup()", {**PROD, "SECRET_KEY": weak})
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is too weak" in result.stderr
    assert 'python -c "import secrets; print(secrets.token_urlsafe(50))"' in result.stderr
    assert weak not in result.stderr  # the message never repeats the secret


def test_a_weak_secret_key_is_accepted_with_debug_on():
    result = _python("import django; django.setup()", {"DEBUG": "1", "SECRET_KEY": "x"})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("OTP_SENDS_PER_IP_PER_HOUR", "0"), ("OTP_SENDS_PER_PHONE_PER_HOUR", "-1"), ("OTP_RESEND_COOLDOWN_S", "-5")],
)
def test_an_otp_limit_out_of_range_stops_the_start(name, value):
    result = _python("import django; django.setup()", {"DEBUG": "1", name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} must be at least" in result.stderr


@pytest.mark.parametrize(
    ("share", "whole"),
    [
        ("OTP_MAX_ATTEMPTS_PER_IP", "OTP_MAX_ATTEMPTS"),
        ("OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR", "OTP_SENDS_PER_PHONE_PER_HOUR"),
    ],
)
def test_a_per_address_share_as_large_as_the_whole_stops_the_start(share, whole):
    result = _python("import django; django.setup()", {"DEBUG": "1", share: "5", whole: "5"})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {whole} (5) must be more than {share} (5)" in result.stderr


@pytest.mark.parametrize("url", ["hooks.example.org/in", "ftp://hooks.example.org/", "https://x.org/" + "a" * 250])
def test_a_webhook_url_that_is_not_http_or_too_long_stops_the_start(url):
    result = _python("import django; django.setup()", {"DEBUG": "1", "REFERRAL_WEBHOOK_URL": url})
    assert result.returncode != 0
    assert "ImproperlyConfigured: REFERRAL_WEBHOOK_URL must be" in result.stderr


def test_the_deploy_check_fails_when_fake_delivery_is_on_with_debug_off():
    result = _manage("check", "--deploy", "--fail-level", "ERROR", env={**PROD, "OTP_FAKE_DELIVERY": "1"})
    assert result.returncode != 0
    assert "accounts.E001" in result.stderr


def test_the_deploy_check_lets_fake_delivery_through_only_when_forced():
    forced = {**PROD, "OTP_FAKE_DELIVERY": "1", "OTP_FAKE_DELIVERY_FORCED": "1"}
    result = _manage("check", "--deploy", "--fail-level", "ERROR", env=forced)
    assert "accounts.E001" not in result.stdout + result.stderr
    assert "accounts.W001" in result.stdout + result.stderr
    # The older alias is caught too.
    alias = _manage("check", "--deploy", env={**PROD, "FAKE_CONFIRM": "1"})
    assert "accounts.E001" in alias.stderr


def test_the_deploy_check_fails_on_test_numbers_with_debug_off_unless_forced():
    numbers = {**PROD, "OTP_TEST_NUMBERS": "+79990000001:1234,+79990000002:5678"}
    refused = _manage("check", "--deploy", "--fail-level", "ERROR", env=numbers)
    assert refused.returncode != 0
    assert "accounts.E002" in refused.stderr
    forced = _manage("check", "--deploy", "--fail-level", "ERROR", env={**numbers, "OTP_TEST_NUMBERS_FORCED": "1"})
    assert forced.returncode == 0, forced.stderr
    assert "accounts.E002" not in forced.stdout + forced.stderr
    assert "accounts.W003" in forced.stdout + forced.stderr
    assert _manage("check", "--deploy", "--fail-level", "ERROR", env=PROD).returncode == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTP_TEST_NUMBERS", "+79990000001:12"),
        ("OTP_TEST_NUMBERS", "not-a-phone:1234"),
        ("OTP_ALLOWED_NUMBER_TYPES", "mobile,cellular"),
        ("OTP_SENDS_PER_PREFIX_PER_HOUR", "0"),
        ("OTP_CONVERSION_MIN_RATE", "1.5"),
    ],
)
def test_a_bad_fraud_guard_setting_stops_the_start(name, value):
    result = _python("import django; django.setup()", {"DEBUG": "1", name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}" in result.stderr


@pytest.mark.django_db
def test_an_expired_access_token_is_refused(api):
    token = AccessToken.for_user(UserFactory())
    token.set_exp(lifetime=-timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/my_profile/").status_code == 401


@pytest.mark.django_db
def test_a_refresh_token_is_not_accepted_as_an_access_token(api):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(UserFactory())}")
    assert api.get("/api/v1/my_profile/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/accounts/user/", "/admin/notifications/message/", "/admin/django_celery_beat/"]
)
def test_the_admin_site_sends_a_logged_in_non_staff_user_to_its_login(client, path):
    client.force_login(UserFactory())
    answer = client.get(path)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_admin_site_opens_for_staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/accounts/user/").status_code == 200


@pytest.mark.django_db
def test_the_staff_api_refuses_a_non_staff_token_on_every_method(auth_api, user):
    detail = f"/api/v1/all_profiles/{user.pk}/"
    answers = [
        auth_api.get("/api/v1/all_profiles/"),
        auth_api.get(detail),
        auth_api.patch(detail, {"is_active": True}, format="json"),
        auth_api.delete(detail),
    ]
    assert [a.status_code for a in answers] == [403] * 4
