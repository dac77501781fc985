"""/admin/ needs the password (issue 19.2): a session made by the phone-code pages never opens
it, and password tries are capped per account and per client address."""

import pytest
from django.test import Client

from accounts import services
from project.exceptions import RateLimited
from tests.factories import UserFactory

from .test_views import log_in

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "a-long-admin-password-42"


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


@pytest.fixture
def admin_user():
    return UserFactory(is_staff=True, is_superuser=True, password=PASSWORD)


def _password_login(client, phone, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": phone, "password": password, "next": "/admin/"}, **extra)


def test_a_session_from_the_phone_code_pages_never_opens_the_admin(client, admin_user):
    page = log_in(client, admin_user.phone)
    assert page.status_code == 200 and "_auth_user_id" in client.session
    for path in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{admin_user.pk}/change/"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer["Location"].startswith(LOGIN)
    # The admin's login page asks for the password instead of letting the session in.
    login_page = client.get(LOGIN)
    assert login_page.status_code == 200
    assert 'name="password"' in login_page.content.decode()


def test_the_admin_login_with_the_password_opens_the_admin(client, admin_user):
    answer = _password_login(client, admin_user.phone)
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_password_login_still_opens_the_admin_after_the_phone_code_pages(client, admin_user):
    log_in(client, admin_user.phone)
    _password_login(client, admin_user.phone)
    assert client.get("/admin/").status_code == 200


def test_a_sixth_password_try_for_one_account_is_refused_even_when_right(client, admin_user):
    for _ in range(5):
        wrong = _password_login(client, admin_user.phone, "wrong-password")
        assert wrong.status_code == 200  # the form again, with Django's message
    refused = _password_login(client, admin_user.phone)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many password tries for this account." in refused.content.decode()
    assert client.get("/admin/").status_code == 302


def test_other_spellings_of_the_phone_share_the_account_cap(client, admin_user):
    national = "8" + admin_user.phone[2:]
    for spelling in (admin_user.phone, national, admin_user.phone, national, admin_user.phone):
        assert _password_login(client, spelling, "wrong-password").status_code == 200
    assert _password_login(client, national).status_code == 429


def test_the_twenty_first_password_try_from_one_address_is_refused(admin_user):
    client = Client(REMOTE_ADDR="198.51.100.7")
    for i in range(20):
        assert _password_login(client, f"+7999555{i:04d}", "wrong-password").status_code == 200
    refused = _password_login(client, admin_user.phone)
    assert refused.status_code == 429
    assert "Too many password tries from this address." in refused.content.decode()
    # Another address still reaches the account.
    assert _password_login(Client(REMOTE_ADDR="198.51.100.8"), admin_user.phone).status_code == 302


def test_a_right_password_clears_the_accounts_count(client, admin_user):
    for _ in range(4):
        _password_login(client, admin_user.phone, "wrong-password")
    assert _password_login(client, admin_user.phone).status_code == 302
    client.logout()
    for _ in range(4):
        assert _password_login(client, admin_user.phone, "wrong-password").status_code == 200
    assert _password_login(client, admin_user.phone).status_code == 302


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_password_tries_cannot_pass_the_account_cap():
    from tests.reliability.parallel import errors, run_parallel

    def one_try():
        try:
            services.password_try_count(phone="+79995550000", ip=None)
        except RateLimited:
            return "refused"
        return "counted"

    results = run_parallel([one_try] * 12)
    assert errors(results) == []
    assert sorted(results).count("counted") == 5
