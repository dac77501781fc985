"""/metrics in one process (the default registry); tests/deploy/test_metrics_stack.py scrapes a
gunicorn with 2 workers and a real Celery worker in multiprocess mode."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from notifications.models import Message
from notifications.services import message_claim, message_mark_failed, message_mark_sent
from project.metrics import phone_region


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client, **extra) -> dict:
    answer = client.get("/metrics", **extra)
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.content.decode())
        for sample in family.samples
    }


@pytest.mark.django_db
def test_metrics_are_refused_to_an_address_not_allowed(client, settings):
    answer = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert answer.status_code == 403
    assert answer.json() == {"detail": "Metrics are not served to this address."}


@pytest.mark.django_db
def test_metrics_are_served_to_loopback_and_to_an_allowed_network(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="172.16.80.20").status_code == 200  # the compose network


@pytest.mark.django_db
def test_a_client_behind_a_trusted_proxy_is_judged_by_its_own_address(client, settings):
    settings.TRUSTED_PROXIES = ["172.16.80.10"]
    answer = client.get("/metrics", REMOTE_ADDR="172.16.80.10", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert answer.status_code == 403


@pytest.mark.django_db
def test_requests_are_counted_by_view_method_and_status(api):
    before = value("http_request_duration_seconds_count", view="auth-signup", method="POST", status="400")
    api.post("/api/v1/auth/signup/", {"phone": "nope"}, format="json")
    assert value("http_request_duration_seconds_count", view="auth-signup", method="POST", status="400") == before + 1


@pytest.mark.django_db
def test_an_odd_method_does_not_mint_a_label(client):
    client.generic("BREW", "/health/")
    assert value("http_request_duration_seconds_count", view="health", method="other", status="200") >= 1
    assert (
        REGISTRY.get_sample_value(
            "http_request_duration_seconds_count", {"view": "health", "method": "BREW", "status": "200"}
        )
        is None
    )


@pytest.mark.django_db
def test_codes_issued_refused_by_reason_used_and_wrong_tries_are_counted(api, settings):
    settings.OTP_FAKE_DELIVERY = True
    phone = "+79995550101"
    issued, cooldown = value("otp_codes_issued_total", region="RU"), value("otp_codes_refused_total", reason="cooldown")
    used, wrong = value("otp_codes_used_total", region="RU"), value("otp_wrong_tries_total")

    code = api.post("/api/v1/auth/signup/", {"phone": phone}, format="json").json()["confirmation_code"]
    assert api.post("/api/v1/auth/signup/", {"phone": phone}, format="json").status_code == 429
    bad = "0000" if code != "0000" else "1111"
    assert api.post("/api/v1/auth/token/", {"phone": phone, "confirmation_code": bad}, format="json").status_code == 400
    assert (
        api.post("/api/v1/auth/token/", {"phone": phone, "confirmation_code": code}, format="json").status_code == 200
    )

    assert value("otp_codes_issued_total", region="RU") == issued + 1
    assert value("otp_codes_refused_total", reason="cooldown") == cooldown + 1
    assert value("otp_wrong_tries_total") == wrong + 1
    assert value("otp_codes_used_total", region="RU") == used + 1


@pytest.mark.django_db(transaction=True)
def test_a_first_login_counts_a_user_created_and_a_second_does_not(api, settings):
    settings.OTP_FAKE_DELIVERY = True
    settings.OTP_RESEND_COOLDOWN_S = 0
    phone = "+79995550102"
    created = value("users_created_total")
    for _ in range(2):
        code = api.post("/api/v1/auth/signup/", {"phone": phone}, format="json").json()["confirmation_code"]
        login = api.post("/api/v1/auth/token/", {"phone": phone, "confirmation_code": code}, format="json")
        assert login.status_code == 200
    assert value("users_created_total") == created + 1


@pytest.mark.django_db
def test_bad_input_is_no_refusal_by_a_rule(api):
    before = sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "otp_codes_refused"
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    api.post("/api/v1/auth/signup/", {"phone": "not a phone"}, format="json")
    after = sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "otp_codes_refused"
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    assert after == before


@pytest.mark.django_db
def test_deliveries_are_counted_by_channel_and_outcome_with_the_time_from_the_row(db):
    sent_before = value("outbox_deliveries_total", channel="file", outcome="sent")
    failed_before = value("outbox_deliveries_total", channel="webhook", outcome="failed")
    timed_before = value("outbox_delivery_seconds_count", channel="file")
    one = Message.objects.create(channel="file", recipient="+79990000001", body="x")
    two = Message.objects.create(channel="webhook", recipient="http://127.0.0.1:9/", body="{}")
    Message.objects.filter(pk=one.pk).update(created_at=timezone.now() - timedelta(seconds=3))
    message_mark_sent(message=message_claim(message_id=one.pk), provider_id="p")
    message_mark_failed(message=message_claim(message_id=two.pk), error="410 Gone")

    assert value("outbox_deliveries_total", channel="file", outcome="sent") == sent_before + 1
    assert value("outbox_deliveries_total", channel="webhook", outcome="failed") == failed_before + 1
    assert value("outbox_delivery_seconds_count", channel="file") == timed_before + 1
    # The 3 s since the row was written fall in the 5 s bucket, not the 2.5 s one.
    assert (
        value("outbox_delivery_seconds_bucket", channel="file", le="5.0")
        - value("outbox_delivery_seconds_bucket", channel="file", le="2.5")
        >= 1
    )


@pytest.mark.django_db
def test_the_outbox_and_the_sms_budget_are_read_when_scraped(client, settings):
    settings.OTP_SMS_BUDGET_PER_HOUR = 4
    settings.OTP_SMS_BUDGET_PER_DAY = 40
    for _ in range(3):
        Message.objects.create(channel="sms", recipient="+79990000001", body="x")
    old = Message.objects.create(channel="file", recipient="+79990000001", body="x")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    day_old = Message.objects.create(channel="sms", recipient="+79990000001", body="x", status="sent")
    Message.objects.filter(pk=day_old.pk).update(created_at=timezone.now() - timedelta(hours=3))

    samples = scraped(client)
    assert samples[("outbox_pending_rows", ())] == 4
    assert 90 <= samples[("outbox_oldest_pending_age_seconds", ())] < 120
    assert samples[("otp_sms_codes", (("window", "hour"),))] == 3
    assert samples[("otp_sms_codes", (("window", "day"),))] == 4
    assert samples[("otp_sms_budget_used_ratio", (("window", "hour"),))] == 0.75
    assert samples[("otp_sms_budget_used_ratio", (("window", "day"),))] == 0.1


@pytest.mark.django_db
def test_without_the_guards_settings_the_budget_has_its_defaults(client, settings):
    for name in ("OTP_SMS_BUDGET_PER_HOUR", "OTP_SMS_BUDGET_PER_DAY"):
        if hasattr(settings, name):
            delattr(settings, name)
    samples = scraped(client)
    assert samples[("otp_sms_budget", (("window", "hour"),))] == 300
    assert samples[("otp_sms_budget", (("window", "day"),))] == 3000


def test_a_phones_region_comes_from_its_country_code():
    assert phone_region("+79991234567") == "RU"
    assert phone_region("+77012345678") == "RU"  # +7 is shared; its main region names it
    assert phone_region("+14155550100") == "US"
    assert phone_region("+380501234567") == "UA"
    assert phone_region("+441234567890") == "GB"


@pytest.mark.django_db
def test_any_refusal_raised_inside_code_request_is_counted_by_its_reason(api, monkeypatch):
    """The fraud guard's reasons (region, budget_hour, ...) flow in with no more work."""
    from accounts import services
    from project.exceptions import ApplicationError

    def guard_refusal(**kwargs):
        return ApplicationError("This country is not served.", field="phone", reason="region"), timezone.now()

    monkeypatch.setattr(services, "_send_refusal", guard_refusal)
    before = value("otp_codes_refused_total", reason="region")
    assert api.post("/api/v1/auth/signup/", {"phone": "+79995550103"}, format="json").status_code == 400
    assert value("otp_codes_refused_total", reason="region") == before + 1


@pytest.mark.django_db(transaction=True)
def test_referrals_are_counted_by_the_status_they_get(settings):
    from accounts.models import User
    from referrals.services import inviter_set, referrals_decide

    settings.REFERRAL_REVIEW = True
    settings.REFERRAL_MAX_PER_HOUR = 1  # the second referral of the hour is flagged
    inviter = User.objects.create_user(phone="+79990000001")
    first, second = (User.objects.create_user(phone=phone) for phone in ("+79161112233", "+79263334455"))
    approved, flagged = value("referrals_total", status="approved"), value("referrals_total", status="flagged")
    rejected = value("referrals_total", status="rejected")

    inviter_set(user_id=first.pk, code=inviter.ref_code)
    inviter_set(user_id=second.pk, code=inviter.ref_code)
    staff = User.objects.create_user(phone="+79375556677", is_staff=True)
    referrals_decide(referral_ids=[second.pk], status="rejected", staff=staff)

    assert value("referrals_total", status="approved") == approved + 1
    assert value("referrals_total", status="flagged") == flagged + 1
    assert value("referrals_total", status="rejected") == rejected + 1


@pytest.mark.django_db
def test_with_the_broker_down_app_ready_is_0_and_the_outbox_still_shows(client, monkeypatch):
    from project import health

    monkeypatch.setattr(health, "_broker_ok", lambda: "broker: ConnectionError")
    Message.objects.create(channel="file", recipient="+79990000001", body="x")
    samples = scraped(client)
    assert samples[("app_ready", ())] == 0
    assert samples[("outbox_pending_rows", ())] == 1


@pytest.mark.django_db
def test_app_ready_is_1_while_ready_answers_200(client):
    assert scraped(client)[("app_ready", ())] == 1


@pytest.mark.django_db
def test_a_scrape_over_plain_http_is_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True  # HTTPS on (production): Prometheus scrapes web:8000 over HTTP
    assert client.get("/health/").status_code == 200  # exempt as before
    assert client.get("/my_profile/").status_code == 301
    assert client.get("/metrics").status_code == 200
