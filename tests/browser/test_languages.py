"""The pages in Russian and English, at desktop and phone sizes: the browser's language picks
the page's, the footer's switch overrides it and is kept (a cookie), and every page stays
readable (labels, contrast, no sideways scroll). The README shows these screenshots."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_pages import check_page

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

TEXTS = {
    "ru": {
        "locale": "ru-RU",
        "phone": "Номер телефона",
        "send": "Прислать код",
        "code": "Код подтверждения",
        "log_in": "Войти",
        "inviter": "Реферальный код пригласившего",
        "save": "Сохранить",
        "saved": "Сохранено: вас пригласил +7 999 222-00-01.",
        "title": "Мой профиль",
    },
    "en": {
        "locale": "en-US",
        "phone": "Phone number",
        "send": "Send me a code",
        "code": "Confirmation code",
        "log_in": "Log in",
        "inviter": "Your inviter's referral code",
        "save": "Save inviter",
        "saved": "Saved: you were invited by +7 999 222-00-01.",
        "title": "My profile",
    },
}


def log_in(page, phone, words):
    page.goto("/")
    page.get_by_label(words["phone"]).fill(phone)
    page.get_by_role("button", name=words["send"]).click()
    expect(page).to_have_url(re.compile(r"/submit/$"))
    code = re.search(r"\b\d{4}\b", page.locator(".otp-code").inner_text()).group()
    page.get_by_label(words["code"]).fill(code)
    page.get_by_role("button", name=words["log_in"], exact=True).click()
    expect(page).to_have_url(re.compile(r"/my_profile/$"))


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_pages_in_the_browsers_language_at_desktop_and_phone_sizes(browsing, shot, lang, size, viewport):
    words = TEXTS[lang]
    n = {"desktop": 1, "phone": 2}[size] + {"ru": 0, "en": 2}[lang]
    inviter = browsing.page(browsing.person(viewport=viewport, locale=words["locale"]))
    log_in(inviter, f"+7 999 222-00-0{n}", words)
    inviter_code = inviter.locator("#my-ref-code").inner_text()

    page = browsing.page(browsing.person(viewport=viewport, locale=words["locale"]))
    page.goto("/")
    check_page(page, lang)
    expect(page.get_by_role("button", name=words["send"])).to_be_visible()
    shot(page, f"{lang}-{size}-home", docs=True)
    log_in(page, f"8 999 111-00-0{n}", words)
    page.get_by_label(words["inviter"]).fill(inviter_code)
    page.get_by_role("button", name=words["save"]).click()
    expect(page.locator(".message--success")).to_have_text(words["saved"].replace("00-01", f"00-0{n}"))
    expect(page.locator("h1")).to_have_text(words["title"])
    expect(page.locator("#my-phone")).to_have_text(f"+7 999 111-00-0{n}")
    check_page(page, lang)
    shot(page, f"{lang}-{size}-profile", docs=True)


def test_the_language_switch_overrides_the_browsers_language_and_is_kept(browsing):
    page = browsing.page(browsing.person(viewport=PHONE, locale="ru-RU"))
    page.goto("/")
    check_page(page, "ru")
    switch = page.get_by_role("form", name="Язык")
    expect(switch.get_by_role("button", name="Русский")).to_have_attribute("aria-pressed", "true")
    switch.get_by_role("button", name="English").click()
    expect(page).to_have_url(re.compile(r"/$"))
    check_page(page, "en")
    expect(page.get_by_label("Phone number")).to_be_visible()
    # Kept on the next pages (the django_language cookie), whatever the browser asks for.
    page.goto("/submit/")
    check_page(page, "en")
    expect(page.get_by_role("alert")).to_contain_text("Enter your phone number first")
    page.get_by_role("form", name="Language").get_by_role("button", name="Русский").click()
    check_page(page, "ru")
    expect(page.get_by_label("Номер телефона")).to_be_visible()
