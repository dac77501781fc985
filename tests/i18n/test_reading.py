"""Times and phones for reading (issue 22.5): the pages and the admin show times in TIME_ZONE
(default Europe/Moscow) and phones as people write them (+7 999 123-45-67); the API keeps ISO
8601 in UTC and E.164."""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from referrals.models import Referral
from referrals.services import inviter_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# 21:30 UTC on 3 December is 00:30 on 4 December in Moscow (UTC+3): the day changes too.
LATE_EVENING_UTC = datetime(2026, 12, 3, 21, 30, tzinfo=UTC)


@pytest.fixture
def people():
    inviter = UserFactory(phone="+79992221100")
    me = UserFactory(phone="+79991234567")
    inviter_set(user_id=me.id, code=inviter.ref_code)
    User.objects.filter(pk=me.pk).update(created_at=LATE_EVENING_UTC)
    Referral.objects.filter(invitee=me).update(created_at=LATE_EVENING_UTC)
    me.refresh_from_db()
    return me, inviter


@pytest.fixture
def admin_client(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_the_time_zone_setting_defaults_to_moscow():
    assert settings.TIME_ZONE == "Europe/Moscow"


def test_the_profile_page_shows_local_time_and_readable_phones(people):
    me, _ = people
    browser = Client()
    browser.force_login(me, backend="accounts.authentication.PhoneCodeBackend")
    html = browser.get("/my_profile/").content.decode()
    assert '<time id="my-created-at" datetime="2026-12-03T21:30:00+00:00">4 December 2026, 00:30</time>' in html
    assert 'id="my-phone">+7 999 123-45-67<' in html
    assert 'Invited by <strong class="phone">+7 999 222-11-00</strong>' in html
    assert "+79991234567" not in html
    russian = Client(HTTP_ACCEPT_LANGUAGE="ru")
    russian.force_login(me, backend="accounts.authentication.PhoneCodeBackend")
    assert ">4 декабря 2026, 00:30</time>" in russian.get("/my_profile/").content.decode()


def test_the_api_keeps_utc_and_e164(people):
    me, _ = people
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(me).access_token}")
    (profile,) = api.get("/api/v1/my_profile/").json()
    assert profile["created_at"] == "2026-12-03T21:30:00Z"
    assert profile["phone"] == "+79991234567"
    assert profile["my_inviter"] == "+79992221100"
    staff = User.objects.create_superuser(phone="+79990001122", password="a-long-admin-password-42")
    admin_api = APIClient(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff).access_token}")
    (referral,) = admin_api.get("/api/v1/referrals/").json()["results"]
    assert referral["created_at"] == "2026-12-03T21:30:00Z"
    listed = {p["phone"]: p for p in admin_api.get("/api/v1/all_profiles/").json()["results"]}
    assert listed["+79991234567"]["created_at"] == "2026-12-03T21:30:00Z"


def test_the_admin_shows_local_time_and_readable_phones(people, admin_client):
    me, _ = people
    changelist = admin_client.get("/admin/accounts/user/").content.decode()
    assert "+7 999 123-45-67" in changelist and "+7 999 222-11-00" in changelist
    assert "+79991234567" not in changelist
    assert "Dec. 4, 2026, 12:30 a.m." in changelist  # Django's English format, in Moscow time
    page = admin_client.get(f"/admin/accounts/user/{me.pk}/change/").content.decode()
    assert "Dec. 4, 2026, 12:30 a.m." in page
    referrals = admin_client.get("/admin/referrals/referral/").content.decode()
    assert "+7 999 123-45-67" in referrals and "Dec. 4, 2026, 12:30 a.m." in referrals
