"""The admin's activity charts (/admin/charts/): staff only, the last 30 days, one point a day.
The browser test (tests/browser/test_admin_charts.py) looks at the page on a phone."""

import re

import pytest
from django.utils import timezone

from project.activity import activity_daily
from tests.factories import UserFactory, activity_seed

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-admin-password-42"


@pytest.fixture
def staff_client(client):
    staff = UserFactory(is_staff=True, password=PASSWORD)
    assert client.post("/admin/login/", {"username": staff.phone, "password": PASSWORD}).status_code == 302
    return client


def test_each_series_counts_its_rows_per_day_and_nothing_outside_the_window():
    today = timezone.localdate()
    expected = activity_seed(today=today)
    activity = activity_daily(days=30, today=today)

    assert len(activity.days) == 30 and activity.days[-1] == today
    for key, series in activity.series.items():
        if series.values is None:
            continue  # codes_refused: recorded by the fraud guard (CodeRefusal)
        for day, count in zip(activity.days, series.values, strict=True):
            assert count == expected.get(day, {}).get(key, 0), (key, day)


def test_the_index_links_to_the_charts_and_the_page_shows_the_figures(staff_client):
    today = timezone.localdate()
    expected = activity_seed(today=today)
    assert 'href="/admin/charts/"' in staff_client.get("/admin/").content.decode()

    page = staff_client.get("/admin/charts/")
    assert page.status_code == 200
    html = page.content.decode()
    charts = html.split('id="content-main"')[1]
    assert charts.count("<svg viewBox") == 4 and "<script" not in charts  # the charts need no script
    (late,) = [day for day, counts in expected.items() if counts.get("codes_sent") == 4]
    row = re.search(rf'<tr data-day="{late:%Y-%m-%d}">(.*?)</tr>', charts.split("Login codes sent")[1]).group(1)
    sent, refused = re.findall(r"<td>([^<]*)</td>", row)
    # Refusals are the fraud guard's records (CodeRefusal): none seeded, or none recorded here.
    assert sent == "4" and refused in ("0", "n/a")


def test_the_charts_are_for_staff_only(client):
    assert client.get("/admin/charts/")["Location"].startswith("/admin/login/")
    user = UserFactory(password=PASSWORD)
    client.post("/admin/login/", {"username": user.phone, "password": PASSWORD})
    assert client.get("/admin/charts/")["Location"].startswith("/admin/login/")
