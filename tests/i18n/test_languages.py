"""Russian and English: the pages (a switch kept in a cookie, else Accept-Language), form errors,
API messages by Accept-Language, and the login code's SMS / e-mail text in the language of the
request that asked for it. Without either, LANGUAGE_CODE (English) answers."""

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from notifications.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


def test_api_errors_follow_accept_language_and_default_to_english():
    russian = APIClient(HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.8")
    answer = russian.post("/api/v1/auth/signup/", {"phone": "12"}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"phone": ["Введите правильный номер телефона, например +79991234567."]}
    assert answer["Content-Language"] == "ru"
    # DRF's own messages come from DRF's Russian catalogue.
    assert russian.get("/api/v1/my_profile/").json() == {"detail": "Учетные данные не были предоставлены."}
    # A client that sends no Accept-Language gets what it always got.
    plain = APIClient().post("/api/v1/auth/signup/", {"phone": "12"}, format="json")
    assert plain.json() == {"phone": ["Enter a valid phone number, e.g. +79991234567."]}
    assert plain["Content-Language"] == "en"
    english = APIClient(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert english.post("/api/v1/auth/signup/", {"phone": "12"}, format="json").json() == plain.json()


def test_a_rate_limit_and_a_wrong_code_are_said_in_russian():
    api = APIClient(HTTP_ACCEPT_LANGUAGE="ru")
    code = api.post("/api/v1/auth/signup/", {"phone": "+79991234567"}, format="json").json()["confirmation_code"]
    again = api.post("/api/v1/auth/signup/", {"phone": "+79991234567"}, format="json")
    assert again.status_code == 429
    assert re.fullmatch(r"Код только что отправлен\. Новый можно запросить через \d+ с\.", again.json()["detail"])
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    answer = api.post("/api/v1/auth/token/", {"phone": "+79991234567", "confirmation_code": wrong}, format="json")
    assert answer.json() == {"confirmation_code": ["Неверный или просроченный код. Запросите новый."]}


def test_the_login_codes_text_is_in_the_language_of_the_request_that_asked_for_it():
    APIClient(HTTP_ACCEPT_LANGUAGE="ru").post("/api/v1/auth/signup/", {"phone": "+79991234567"}, format="json")
    APIClient().post("/api/v1/auth/signup/", {"phone": "+79997654321"}, format="json")
    Client(HTTP_ACCEPT_LANGUAGE="ru").post("/", {"phone": "+79995550011"})
    bodies = {m.recipient: m.body for m in Message.objects.all()}
    assert re.fullmatch(r"Ваш код для входа: \d{4}\. Он действует 5 минут\.", bodies["+79991234567"])
    assert re.fullmatch(r"Your login code: \d{4}\. It is valid for 5 minutes\.", bodies["+79997654321"])
    assert bodies["+79995550011"].startswith("Ваш код для входа: ")


def test_the_pages_follow_accept_language_and_show_their_form_errors_in_it():
    russian = Client(HTTP_ACCEPT_LANGUAGE="ru")
    html = russian.get("/").content.decode()
    assert '<html lang="ru">' in html
    assert '<label for="id_phone">Номер телефона</label>' in html
    assert "Прислать код" in html
    error = russian.post("/", {"phone": "12abc"}).content.decode()
    assert "Введите правильный номер телефона, например +79991234567." in error
    assert '<html lang="en">' in Client().get("/").content.decode()


def test_the_language_switch_is_kept_in_a_cookie_over_accept_language():
    browser = Client(HTTP_ACCEPT_LANGUAGE="ru")
    assert "Прислать код" in browser.get("/").content.decode()
    answer = browser.post("/i18n/setlang/", {"language": "en", "next": "/submit/"})
    assert answer.status_code == 302 and answer.url == "/submit/"
    assert browser.cookies["django_language"].value == "en"
    html = browser.get("/").content.decode()
    assert '<html lang="en">' in html and "Send me a code" in html
    # Back to Russian, and the page's switch names both languages in their own words.
    browser.post("/i18n/setlang/", {"language": "ru", "next": "/"})
    html = browser.get("/").content.decode()
    assert '<html lang="ru">' in html
    assert re.search(r'name="language" value="ru" lang="ru"[^>]*aria-pressed="true">Русский<', html)
    assert re.search(r'name="language" value="en" lang="en"[^>]*aria-pressed="false">English<', html)


def test_the_switch_never_redirects_off_the_site():
    answer = Client().post("/i18n/setlang/", {"language": "ru", "next": "https://evil.example/"})
    assert answer.status_code == 302 and answer.url == "/"
