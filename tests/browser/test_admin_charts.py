"""The admin's activity charts in chromium, on a phone and a desktop: seeded days show their
numbers, the page needs no script of its own and never scrolls sideways. The phone screenshot
is the README's (docs/admin-charts.png)."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_pages import CONTRAST_JS
from tests.factories import UserFactory, activity_seed

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

PASSWORD = "a-long-admin-password-42"
# The contrast check of test_pages, on the charts' own part of the page.
CHARTS_CONTRAST_JS = CONTRAST_JS.replace("document.body", "document.querySelector('#content-main')")


def cells(page, chart_title, day):
    chart = page.locator("section.chart", has=page.get_by_role("heading", name=chart_title))
    if chart.locator("details").get_attribute("open") is None:
        chart.locator("summary").click()
    row = chart.locator(f"tr[data-day='{day:%Y-%m-%d}'] td")
    return [text.strip() for text in row.all_inner_texts()]


@pytest.mark.parametrize(("viewport", "name"), [(PHONE, "admin-charts-phone"), (DESKTOP, "admin-charts-desktop")])
def test_the_admin_charts_show_the_seeded_days(browsing, shot, viewport, name):
    today = timezone.localdate()
    expected = activity_seed(today=today)
    early, late = sorted(expected)
    staff = UserFactory(is_staff=True, password=PASSWORD)
    staff.__class__.objects.filter(pk=staff.pk).update(created_at=timezone.now() - timezone.timedelta(days=60))

    page = browsing.page(browsing.person(viewport=viewport))
    page.goto("/admin/login/")
    page.fill("input[name=username]", staff.phone)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Charts: the last 30 days").click()
    expect(page.get_by_role("heading", name="Signups and logins")).to_be_visible()

    assert page.locator("#content-main svg[role=img]").count() == 4
    assert page.locator("#content-main script").count() == 0
    # The legend's 30-day totals.
    assert page.locator("[data-total='Signups']").inner_text() == "4"
    assert page.locator("[data-total='Delivery failures']").inner_text() == "3"
    assert page.locator("[data-total='Referrals approved']").inner_text() == "2"
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert page.evaluate(CHARTS_CONTRAST_JS) == []
    shot(page, name)  # before the tables open: the charts as staff first see them

    assert cells(page, "Signups and logins", early) == ["3", "1"]
    assert cells(page, "Signups and logins", late) == ["1", "2"]
    assert cells(page, "Login codes sent and refused", late)[0] == "4"
    assert cells(page, "Delivery failures", early) == ["2"]
    assert cells(page, "Referrals by status", late) == ["2", "0", "1"]
    assert cells(page, "Referrals by status", early) == ["0", "1", "0"]
    # Each point names its day and count on hover (the SVG's <title>).
    label = f"{late:%d %b}: 4 codes sent"
    assert page.locator("section.chart circle title", has_text=label).count() == 1
