"""The login pages through Django's test client: what a browser sees, without a browser."""

import re

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.phones import phone_display
from accounts.views import SESSION_PHONE
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PHONE = "+79991234567"
SHOWN = "+7 999 123-45-67"  # how the pages write it (phone_display)


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


def shown_code(response) -> str:
    """The code from the fake-delivery message on the page."""
    match = re.search(r'class="[^"]*otp-code[^"]*"[^>]*>[^<]*?(\d{4})<', response.content.decode())
    assert match, "no fake-delivery code on the page"
    return match.group(1)


def ask_code(client, phone=PHONE):
    return client.post("/", {"phone": phone}, follow=True)


def log_in(client, phone=PHONE):
    code = shown_code(ask_code(client, phone))
    return client.post("/submit/", {"confirmation_code": code}, follow=True)


def test_home_shows_a_labelled_phone_form_with_a_csrf_token(client):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en">' in html
    assert '<label for="id_phone">Phone number</label>' in html
    assert 'name="phone"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "/static/css/site.css" in html


def test_it_sends_a_code_for_a_national_spelling_and_shows_it_in_fake_mode(client):
    response = ask_code(client, "8 (999) 123-45-67")
    assert response.redirect_chain == [("/submit/", 302)]
    assert client.session[SESSION_PHONE] == PHONE
    assert f"We have sent a code to {SHOWN}." in response.content.decode()
    assert re.fullmatch(r"\d{4}", shown_code(response))
    assert 'name="confirmation_code"' in response.content.decode()


def test_it_does_not_show_the_code_when_fake_delivery_is_off(client, settings):
    settings.OTP_FAKE_DELIVERY = False
    response = ask_code(client)
    assert f"We have sent a code to {SHOWN}." in response.content.decode()
    assert "otp-code" not in response.content.decode()


def test_it_shows_a_bad_phone_next_to_the_field_and_keeps_what_was_typed(client):
    response = client.post("/", {"phone": "12abc"})
    html = response.content.decode()
    assert response.status_code == 400
    assert '<ul class="errorlist" id="id_phone_error"><li>Enter a valid phone number, e.g. +79991234567.' in html
    assert 'value="12abc"' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_phone_helptext id_phone_error"' in html


def test_it_asks_for_a_phone_when_the_field_is_empty(client):
    response = client.post("/", {"phone": ""})
    assert response.status_code == 400
    assert "Enter a phone number." in response.content.decode()


def test_it_refuses_a_second_code_within_the_cooldown_and_says_how_long(client):
    ask_code(client)
    response = client.post("/", {"phone": PHONE})
    assert response.status_code == 429
    assert re.search(r"Request a new one in \d+ s\.", response.content.decode())


def test_code_form_without_a_phone_in_the_session_sends_you_home_with_a_message(client):
    response = client.get("/submit/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "Enter your phone number first" in response.content.decode()


def test_a_posted_code_without_a_phone_in_the_session_sends_you_home_too(client):
    response = client.post("/submit/", {"confirmation_code": "1234"})
    assert response.status_code == 302
    assert response.url == "/"


def test_the_right_code_logs_in_and_opens_the_profile(client):
    response = log_in(client, "89991234567")
    assert response.redirect_chain == [("/my_profile/", 302)]
    assert f"You are logged in as {SHOWN}." in response.content.decode()
    assert response.context["user"].phone == PHONE
    assert User.objects.filter(phone=PHONE).count() == 1
    assert SESSION_PHONE not in client.session


def test_a_wrong_code_is_refused_next_to_the_field_and_kept(client):
    code = shown_code(ask_code(client))
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    response = client.post("/submit/", {"confirmation_code": wrong})
    html = response.content.decode()
    assert response.status_code == 400
    assert '<ul class="errorlist" id="id_confirmation_code_error"><li>Wrong code. You can try' in html
    assert f'value="{wrong}"' in html
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("code", ["", "12", "12345", "abcd"])
def test_a_malformed_code_gets_the_apis_message(client, code):
    ask_code(client)
    response = client.post("/submit/", {"confirmation_code": code})
    assert response.status_code == 400
    assert "Enter the 4-digit code." in response.content.decode()


def test_a_disabled_account_cannot_log_in_and_is_told_why(client):
    UserFactory(phone=PHONE, is_active=False)
    response = log_in(client)
    assert response.status_code == 400
    assert "This account is disabled." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_send_a_new_code_respects_the_cooldown_and_says_how_long_to_wait(client):
    ask_code(client)
    response = client.post("/submit/", {"resend": "1"})
    html = response.content.decode()
    assert response.status_code == 429
    assert re.search(r'id="resend-error" role="alert">A code was just sent. Request a new one in \d+ s\.', html)


def test_send_a_new_code_after_the_cooldown_shows_a_fresh_code(client, settings):
    settings.OTP_RESEND_COOLDOWN_S = 0
    first = shown_code(ask_code(client))
    response = client.post("/submit/", {"resend": "1"}, follow=True)
    second = shown_code(response)
    assert response.redirect_chain == [("/submit/", 302)]
    # The new code works (and so the old one no longer does: only the latest counts).
    if first != second:
        assert client.post("/submit/", {"confirmation_code": first}).status_code == 400
    assert client.post("/submit/", {"confirmation_code": second}).url == "/my_profile/"


def test_the_hourly_limit_says_how_long_to_wait(client, settings):
    settings.OTP_RESEND_COOLDOWN_S = 0
    settings.OTP_SENDS_PER_PHONE_PER_HOUR = 1
    ask_code(client)
    response = client.post("/submit/", {"resend": "1"})
    assert response.status_code == 429
    wait = r"Too many codes for this phone\. Try again later\. Wait (\d+ min )?\d+ s\."
    assert re.search(wait, response.content.decode())


def test_the_code_page_says_when_an_address_has_tried_too_many_wrong_codes(client, settings):
    settings.OTP_TRIES_PER_IP_PER_HOUR = 1
    code = shown_code(ask_code(client))
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    assert client.post("/submit/", {"confirmation_code": wrong}).status_code == 400
    response = client.post("/submit/", {"confirmation_code": code})
    assert response.status_code == 429
    wait = r"Too many wrong codes from this address\. Try again later\. Wait (\d+ min )?\d+ s\."
    assert re.search(wait, response.content.decode())
    assert "_auth_user_id" not in client.session


def test_login_returns_to_the_page_that_asked_for_it(client):
    response = client.get("/my_profile/")
    assert response.url == "/?next=/my_profile/"
    assert "Log in first" in client.get(response.url).content.decode()
    code = shown_code(client.post(response.url, {"phone": PHONE}, follow=True))
    assert client.post("/submit/", {"confirmation_code": code}).url == "/my_profile/"


def test_a_next_to_another_site_is_ignored(client):
    code = shown_code(client.post("/?next=https://evil.example/", {"phone": PHONE}, follow=True))
    assert client.post("/submit/", {"confirmation_code": code}).url == "/my_profile/"


def test_home_tells_a_logged_in_user_who_they_are_with_links(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert f'You are logged in as <strong class="phone">{phone_display(user.phone)}</strong>' in html
    assert 'href="/my_profile/"' in html
    assert 'href="/logout/"' in html


def test_logout_by_get_only_shows_a_button(client, user):
    client.force_login(user)
    response = client.get("/logout/")
    assert response.status_code == 200
    assert '<button type="submit" class="button">Log out</button>' in response.content.decode()
    assert client.session["_auth_user_id"] == str(user.pk)


def test_logout_by_post_logs_out(client, user):
    client.force_login(user)
    response = client.post("/logout/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "You have logged out." in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/my_profile/").status_code == 302


@pytest.mark.parametrize(
    ("url", "data"),
    [("/", {"phone": PHONE}), ("/submit/", {"confirmation_code": "1234"}), ("/logout/", {})],
)
def test_every_form_refuses_a_post_without_a_csrf_token(url, data):
    client = Client(enforce_csrf_checks=True)
    client.get("/")  # a session and a CSRF cookie, but no token in the form
    assert client.post(url, data).status_code == 403


def test_a_form_with_its_csrf_token_is_accepted():
    client = Client(enforce_csrf_checks=True)
    token = client.get("/").context["csrf_token"]
    response = client.post("/", {"phone": PHONE, "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302


def test_pages_send_a_strict_content_security_policy(client):
    policy = client.get("/")["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_pages_are_not_cached(client):
    assert "no-store" in client.get("/")["Cache-Control"]


def test_pages_answer_other_methods_with_405(client):
    assert client.put("/").status_code == 405


def test_a_browser_session_does_not_open_the_api(client):
    log_in(client)
    assert client.get("/api/v1/my_profile/").status_code == 401


def test_a_jwt_does_not_open_the_pages(client, user):
    token = RefreshToken.for_user(user).access_token
    response = client.get("/my_profile/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 302
    assert response.url.startswith("/?next=")


def test_a_wrong_code_keeps_the_fake_delivery_banner_and_says_how_many_tries_are_left(client, settings):
    code = shown_code(ask_code(client))
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    response = client.post("/submit/", {"confirmation_code": wrong})
    html = response.content.decode()
    assert shown_code(response) == code
    left = min(settings.OTP_MAX_ATTEMPTS, settings.OTP_MAX_ATTEMPTS_PER_IP) - 1
    assert f"Wrong code. You can try {left} more times." in html
    assert "Request a new one" not in html
    # The code still works.
    response = client.post("/submit/", {"confirmation_code": code}, follow=True)
    assert response.redirect_chain == [("/my_profile/", 302)]


def test_only_a_spent_code_asks_for_a_new_one(client, settings):
    settings.OTP_MAX_ATTEMPTS_PER_IP = 2
    code = shown_code(ask_code(client))
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    first = client.post("/submit/", {"confirmation_code": wrong}).content.decode()
    assert "Wrong code. You can try 1 more time." in first
    last = client.post("/submit/", {"confirmation_code": wrong}).content.decode()
    assert "Wrong or expired code. Request a new one." in last
    assert "You can try" not in last
    spent = client.post("/submit/", {"confirmation_code": code}).content.decode()
    assert "Too many wrong tries. Request a new code." in spent
