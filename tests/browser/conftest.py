"""Playwright on Debian's chromium (never `playwright install`) against pytest-django's live_server.

Screenshots go to test-artifacts/screenshots/ (CI keeps that folder as an artifact); with
SCREENSHOTS_UPDATE=1 (`make screenshots`) the README's ones are written to docs/screenshots/ too.
"""

import os
import re
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not Path(CHROMIUM).exists() and os.environ.get("REQUIRE_SERVICES") != "1":
                item.add_marker(pytest.mark.skip(reason=f"needs chromium at {CHROMIUM} (apt-get install chromium)"))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # The sync API keeps an asyncio loop in this thread, and Django refuses ORM calls from a thread
    # with a loop. The test thread only makes fixtures; requests run in the live server's thread.
    # https://docs.djangoproject.com/en/5.2/topics/async/#envvar-DJANGO_ALLOW_ASYNC_UNSAFE
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        yield browser
        browser.close()
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


class Browsing:
    """Opens browser contexts (one per person) and checks every page for console errors,
    which is where chromium reports Content-Security-Policy violations."""

    def __init__(self, browser, base_url):
        self.browser = browser
        self.base_url = base_url
        self.contexts = []
        self.problems = []

    def person(self, viewport=DESKTOP, locale="en-US"):
        # `locale` is the browser's language: its Accept-Language header.
        context = self.browser.new_context(base_url=self.base_url, viewport=viewport, locale=locale)
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context

    def page(self, context):
        page = context.new_page()
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        return page

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsing(browser, live_server):
    session = Browsing(browser, live_server.url)
    yield session
    session.close()
    # Error pages (400/429) are expected answers; chromium logs them as failed resources.
    problems = [p for p in session.problems if not re.search(r"status of (400|429)", p)]
    assert not problems, problems


@pytest.fixture
def shot():
    """shot(page, "name") saves test-artifacts/screenshots/name.png (full page); docs=True marks
    one the README shows (docs/screenshots/, written with SCREENSHOTS_UPDATE=1)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name, docs=False):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if docs and os.environ.get("SCREENSHOTS_UPDATE") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (DOCS_SCREENSHOTS / path.name).write_bytes(path.read_bytes())
        return path

    return save
