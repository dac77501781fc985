"""The admin never shows a refresh token in full (issue 19.4): id, jti, user and dates only."""

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OUTSTANDING = "/admin/token_blacklist/outstandingtoken/"
BLACKLISTED = "/admin/token_blacklist/blacklistedtoken/"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def token():
    refresh = RefreshToken.for_user(UserFactory())
    refresh.blacklist()
    return refresh


def _pages(admin_client, token):
    outstanding = OutstandingToken.objects.get(jti=token["jti"])
    blacklisted = BlacklistedToken.objects.get(token=outstanding)
    return {
        "outstanding list": admin_client.get(OUTSTANDING),
        "outstanding page": admin_client.get(f"{OUTSTANDING}{outstanding.pk}/change/"),
        "blacklisted list": admin_client.get(BLACKLISTED),
        "blacklisted page": admin_client.get(f"{BLACKLISTED}{blacklisted.pk}/change/"),
    }


def test_no_admin_page_shows_the_token_itself(admin_client, token):
    encoded = str(token)
    signature = encoded.rsplit(".", 1)[1]
    for name, page in _pages(admin_client, token).items():
        assert page.status_code == 200, name
        html = page.content.decode()
        assert signature not in html, name
        assert token["jti"] in html, name


def test_the_outstanding_token_page_shows_id_jti_user_and_dates(admin_client, token):
    page = admin_client.get(OUTSTANDING)
    html = page.content.decode()
    for column in ("column-id", "column-jti", "column-user", "column-created_at", "column-expires_at"):
        assert column in html


def test_the_token_cannot_be_found_by_searching_for_it(admin_client, token):
    signature = str(token).rsplit(".", 1)[1]
    for url in (OUTSTANDING, BLACKLISTED):
        found = admin_client.get(url, {"q": signature}).context["cl"].result_list
        assert list(found) == []
        by_jti = admin_client.get(url, {"q": token["jti"]}).context["cl"].result_list
        assert len(by_jti) == 1


def test_the_token_admins_are_read_only(admin_client, token):
    outstanding = OutstandingToken.objects.get(jti=token["jti"])
    assert admin_client.get(f"{OUTSTANDING}add/").status_code == 403
    answer = admin_client.post(f"{OUTSTANDING}{outstanding.pk}/change/", {"jti": "x"})
    assert answer.status_code == 403
    outstanding.refresh_from_db()
    assert outstanding.jti == token["jti"]
