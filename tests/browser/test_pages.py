"""The browser pages end to end: Playwright drives chromium against a live server on PostgreSQL."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

# The text of every page must reach WCAG AA contrast (4.5:1) against what is really behind it.
CONTRAST_JS = """() => {
  const rgb = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(",").map(parseFloat); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const behind = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c && c.a > 0.99) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const text = walk.currentNode.textContent.trim(); const el = walk.currentNode.parentElement;
    if (!text || !el.getClientRects().length) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(behind(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}: ${text.slice(0, 40)}`);
  }
  return bad;
}"""


def check_page(page, lang="en"):
    """What every page must be: lang set, inputs labelled, readable contrast, no sideways scroll."""
    assert page.get_attribute("html", "lang") == lang
    for field in page.locator("input:not([type=hidden])").all():
        assert page.locator(f"label[for='{field.get_attribute('id')}']").count() == 1
    assert page.evaluate(CONTRAST_JS) == []
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def request_code(page, phone):
    page.goto("/")
    page.get_by_label("Phone number").fill(phone)
    page.get_by_role("button", name="Send me a code").click()
    expect(page).to_have_url(re.compile(r"/submit/$"))
    return re.search(r"\b\d{4}\b", page.locator(".otp-code").inner_text()).group()


def log_in(page, phone):
    code = request_code(page, phone)
    page.get_by_label("Confirmation code").fill(code)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/my_profile/$"))


def test_the_whole_flow_from_phone_to_referral_and_logout(browsing, shot):
    # The inviter logs in on a desktop, from a national spelling of the phone.
    inviter = browsing.page(browsing.person())
    inviter.goto("/")
    check_page(inviter)
    shot(inviter, "01-home")
    code = request_code(inviter, "8 (999) 111-22-33")
    expect(inviter.locator(".message--success")).to_have_text("We have sent a code to +7 999 111-22-33.")
    check_page(inviter)
    shot(inviter, "02-code-form")
    inviter.get_by_label("Confirmation code").fill(code)
    inviter.get_by_role("button", name="Log in").click()
    expect(inviter).to_have_url(re.compile(r"/my_profile/$"))
    expect(inviter.locator("#my-phone")).to_have_text("+7 999 111-22-33")
    expect(inviter.get_by_role("navigation", name="Account")).to_contain_text("+7 999 111-22-33")
    expect(inviter.locator("#my-refs-empty")).to_be_visible()
    check_page(inviter)
    inviter_code = inviter.locator("#my-ref-code").inner_text()
    assert re.fullmatch(r"[a-z0-9]{6}", inviter_code)

    # The invitee is on a phone, with the profile open in two tabs.
    invitee_browser = browsing.person(viewport=PHONE)
    invitee = browsing.page(invitee_browser)
    log_in(invitee, "+7 999 444 55 66")
    stale_tab = browsing.page(invitee_browser)
    stale_tab.goto("/my_profile/")
    shot(invitee, "03-profile-phone-screen")
    invitee.get_by_label("Your inviter's referral code").fill(inviter_code.upper())
    invitee.get_by_role("button", name="Save inviter").click()
    expect(invitee.locator(".message--success")).to_have_text("Saved: you were invited by +7 999 111-22-33.")
    expect(invitee.locator("#my-inviter")).to_have_text("Invited by +7 999 111-22-33")
    expect(invitee.get_by_label("Your inviter's referral code")).to_have_count(0)
    check_page(invitee)
    shot(invitee, "04-profile-invited")

    # The second time (the form still open in the other tab) is refused with the API's message.
    stale_tab.get_by_label("Your inviter's referral code").fill(inviter_code)
    stale_tab.get_by_role("button", name="Save inviter").click()
    expect(stale_tab.get_by_role("alert")).to_have_text("You have already entered an inviter's code.")
    expect(stale_tab.locator("#my-inviter")).to_have_text("Invited by +7 999 111-22-33")
    shot(stale_tab, "05-inviter-refused-second-time")

    # The referral appears on the inviter's page.
    inviter.reload()
    expect(inviter.locator("#my-refs li")).to_have_text(["+7 999 444-55-66"])
    check_page(inviter)
    shot(inviter, "06-profile-with-referral")

    # The copy button puts the code on the clipboard.
    browsing.contexts[0].grant_permissions(["clipboard-read", "clipboard-write"])
    inviter.get_by_role("button", name="Copy").click()
    expect(inviter.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert inviter.evaluate("navigator.clipboard.readText()") == inviter_code

    # Log out: the link shows a confirmation page, the button logs out.
    inviter.get_by_role("link", name="Log out").click()
    expect(inviter).to_have_url(re.compile(r"/logout/$"))
    check_page(inviter)
    shot(inviter, "07-logout")
    inviter.get_by_role("button", name="Log out").click()
    expect(inviter.get_by_role("status")).to_have_text("You have logged out.")
    inviter.goto("/my_profile/")
    expect(inviter).to_have_url(re.compile(r"/\?next=/my_profile/$"))
    expect(inviter.get_by_label("Phone number")).to_be_visible()
    shot(inviter, "08-profile-redirects-after-logout")


def test_the_error_paths_show_clear_messages_next_to_the_field(browsing, shot):
    page = browsing.page(browsing.person(viewport=PHONE))

    # No phone in the session: back to / with a message, not an error.
    page.goto("/submit/")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("alert")).to_contain_text("Enter your phone number first")

    page.get_by_label("Phone number").fill("12345")
    page.get_by_role("button", name="Send me a code").click()
    phone_field = page.get_by_label("Phone number")
    expect(phone_field).to_have_value("12345")
    expect(phone_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_phone_error")).to_have_text("Enter a valid phone number, e.g. +79991234567.")
    check_page(page)
    shot(page, "10-bad-phone")

    # A wrong code: refused next to the field, what was typed is kept.
    code = request_code(page, "89997778899")
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    page.get_by_label("Confirmation code").fill(wrong)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#id_confirmation_code_error")).to_have_text("Wrong code. You can try 4 more times.")
    expect(page.locator(".otp-code")).to_contain_text(code)
    expect(page.get_by_label("Confirmation code")).to_have_value(wrong)
    check_page(page)
    shot(page, "11-wrong-code")

    # A new code too soon: says how long to wait.
    page.get_by_role("button", name="Send a new code").click()
    too_soon = re.compile(r"A code was just sent\. Request a new one in \d+ s\.")
    expect(page.locator("#resend-error")).to_have_text(too_soon)
    check_page(page)
    shot(page, "12-resend-too-soon")

    page.get_by_label("Confirmation code").fill(code)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/my_profile/$"))

    # An unknown inviter code, then the user's own code.
    field = page.get_by_label("Your inviter's referral code")
    field.fill("qqqqqq")
    page.get_by_role("button", name="Save inviter").click()
    expect(page.locator("#id_my_inviter_error")).to_have_text("No user has this referral code.")
    expect(field).to_have_value("qqqqqq")
    check_page(page)
    shot(page, "13-unknown-inviter-code")

    own = page.locator("#my-ref-code").inner_text()
    field.fill(own)
    page.get_by_role("button", name="Save inviter").click()
    expect(page.locator("#id_my_inviter_error")).to_have_text("You cannot enter your own referral code.")
    shot(page, "14-own-code")


def test_the_keyboard_reaches_everything_in_reading_order(browsing):
    page = browsing.page(browsing.person())
    page.goto("/")
    visited = []
    for _ in range(5):
        page.keyboard.press("Tab")
        visited.append(page.evaluate("document.activeElement.textContent.trim() || document.activeElement.name"))
    assert visited == ["Skip to content", "Referrals", "Log in", "phone", "Send me a code"]


def test_no_page_asks_anything_from_outside_the_service(browsing, live_server):
    context = browsing.person()
    page = browsing.page(context)
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    log_in(page, "+7 999 222 33 44")
    for path in ("/my_profile/", "/logout/", "/swagger/", "/admin/login/"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.goto("/redoc/")
    # Redoc's "API docs by Redocly" badge: its image comes from the service (project/docs.py).
    logo = page.locator("img[alt='redocly logo']")
    expect(logo).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.querySelector(\"img[alt='redocly logo']\").naturalWidth") > 0
    assert logo.get_attribute("src") == "/static/img/redoc-logo.svg"
    outside = [url for url in asked if not url.startswith((live_server.url, "data:", "blob:"))]
    assert outside == []
    assert any(url.endswith("/static/img/redoc-logo.svg") for url in asked)
