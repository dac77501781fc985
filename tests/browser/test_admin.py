"""The Django admin in a browser: the user list must stay usable on a phone-sized screen."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

PASSWORD = "a-long-admin-password-42"


def admin_login(page, phone):
    page.goto("/admin/login/")
    page.locator("#id_username").fill(phone)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


@pytest.fixture
def people(django_user_model):
    inviter = UserFactory(phone="+79991110000")
    for n in range(1, 4):
        invitee = UserFactory(phone=f"+7999111000{n}")
        from referrals.services import inviter_set

        inviter_set(user_id=invitee.id, code=inviter.ref_code)
    return django_user_model.objects.create_superuser(phone="+79990001122", password=PASSWORD)


def headers(page):
    return [h.strip() for h in page.locator("#result_list thead th:visible").all_inner_texts()]


def test_the_user_list_fits_a_phone_screen_and_keeps_what_finds_and_opens_a_user(browsing, shot, people):
    page = browsing.page(browsing.person(viewport=PHONE))
    admin_login(page, people.phone)
    page.goto("/admin/accounts/user/")
    assert headers(page)[1:] == ["PHONE", "INVITER", "IS ACTIVE"]
    # Nothing sticks out of the page or out of the list's own box.
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert page.evaluate(
        "(() => { const r = document.querySelector('#result_list').getBoundingClientRect();"
        " return r.left >= 0 && r.right <= document.documentElement.clientWidth; })()"
    )
    expect(page.locator("#result_list tbody tr")).to_have_count(5)
    shot(page, "admin-users-phone")
    # Search and open a user from the phone.
    page.locator("#searchbar").fill("1110002")
    page.locator("#changelist-search input[type=submit]").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.locator("#result_list tbody tr th a").click()
    expect(page).to_have_url(re.compile(r"/admin/accounts/user/\d+/change/"))


def test_the_user_list_on_a_desktop_shows_every_column(browsing, people):
    page = browsing.page(browsing.person(viewport=DESKTOP))
    admin_login(page, people.phone)
    page.goto("/admin/accounts/user/")
    assert len(headers(page)) == 9
