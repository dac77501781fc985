"""The fraud guard of issue 20 (accounts.guard), through the doors a client uses: the API and the
pages. Parallel requests against a real gunicorn are in tests/reliability/test_guard_race.py;
the alerts through a real worker to a Telegram stand-in in accounts/tests/test_guard_alerts.py."""

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.guard import guard_watch
from accounts.models import CodeRefusal, GuardAllow, GuardBlock, PhoneCode
from accounts.services import code_hash
from notifications.models import Message
from tests.factories import UserFactory

SIGNUP = "/api/v1/auth/signup/"
TOKEN = "/api/v1/auth/token/"

pytestmark = pytest.mark.django_db

_addresses = itertools.count(1)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _guard_settings(settings):
    settings.OTP_FAKE_DELIVERY = True
    settings.TELEGRAM_ALERTS, settings.TELEGRAM_CHAT_ID = True, "-100555"


def address() -> str:
    """A fresh client address, so the per-address caps stay out of the way."""
    n = next(_addresses)
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def signup(api, phone, ip=None):
    return api.post(SIGNUP, {"phone": phone}, format="json", REMOTE_ADDR=ip or address())


def alerts() -> list[str]:
    return list(Message.objects.filter(channel="telegram").order_by("id").values_list("body", flat=True))


# --- 1. Countries -----------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["+14155552671", "+447911123456", "+77012345678"])
def test_a_number_of_another_country_is_a_400_on_phone_and_nothing_is_sent(api, phone):
    response = signup(api, phone)

    assert response.status_code == 400
    assert response.json() == {"phone": ["We cannot send codes to this country."]}
    assert not PhoneCode.objects.exists() and not Message.objects.exists()


def test_the_allowed_countries_are_a_setting_and_a_star_allows_all(api, settings):
    settings.OTP_ALLOWED_REGIONS = ["RU", "US"]
    assert signup(api, "+14155552671").status_code == 200
    assert signup(api, "+447911123456").status_code == 400
    settings.OTP_ALLOWED_REGIONS = ["*"]
    assert signup(api, "+447911123456").status_code == 200


# --- 2. Number types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "kind"),
    [("+78091234567", "premium-rate"), ("+78001234567", "toll-free"), ("+74951234567", "fixed-line")],
)
def test_a_number_that_cannot_take_a_text_is_a_400_on_phone(api, phone, kind):
    from accounts.phones import phone_kind

    assert phone_kind(phone) == ("RU", kind)
    response = signup(api, phone)

    assert response.status_code == 400
    assert response.json() == {"phone": ["We cannot send codes to this kind of number."]}
    assert CodeRefusal.objects.get().reason == "number_type"


def test_the_allowed_number_types_are_a_setting(api, settings):
    settings.OTP_ALLOWED_NUMBER_TYPES = ["mobile", "fixed-line"]
    assert signup(api, "+74951234567").status_code == 200
    assert signup(api, "+78091234567").status_code == 400


# --- 3. Prefix velocity -----------------------------------------------------------------------


def test_a_prefix_gets_its_hourly_codes_from_any_addresses_then_429_until_the_hour_ends(api, settings):
    settings.OTP_SENDS_PER_PREFIX_PER_HOUR = 10
    for n in range(10):
        assert signup(api, f"+7999123{n:04d}").status_code == 200

    refused = signup(api, "+79991239999")

    assert refused.status_code == 429
    assert refused.json()["detail"] == "Too many codes to numbers like this one. Try again later."
    now = timezone.now()
    hour_end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert abs(int(refused["Retry-After"]) - (hour_end - now).total_seconds()) <= 2
    # The number next door in another prefix, and the same prefix's own phones' limits, are apart.
    assert signup(api, "+79991240000").status_code == 200
    assert PhoneCode.objects.filter(prefix="+7999123").count() == 10


def test_the_free_digits_of_a_prefix_are_a_setting(api, settings):
    settings.OTP_SENDS_PER_PREFIX_PER_HOUR, settings.OTP_PREFIX_FREE_DIGITS = 2, 2
    assert signup(api, "+79991234500").status_code == 200
    assert signup(api, "+79991234501").status_code == 200
    assert signup(api, "+79991234502").status_code == 429
    assert signup(api, "+79991234600").status_code == 200  # another hundred


# --- 4. The SMS budget ------------------------------------------------------------------------


def test_the_hourly_sms_budget_alerts_at_80_and_100_percent_once_then_503_until_the_hour_ends(api, settings):
    settings.OTP_DELIVERY_BACKENDS = ["sms"]
    settings.OTP_SMS_BUDGET_PER_HOUR, settings.OTP_SMS_BUDGET_PER_DAY = 5, 100
    phones = [f"+7999{n:03d}0000" for n in range(100, 108)]
    statuses = []
    for phone in phones[:3]:
        statuses.append(signup(api, phone).status_code)
    assert alerts() == []
    statuses.append(signup(api, phones[3]).status_code)  # 4 of 5: 80 %
    assert len(alerts()) == 1 and "SMS budget at 80 %: hourly" in alerts()[0]
    statuses.append(signup(api, phones[4]).status_code)  # 5 of 5: spent
    assert len(alerts()) == 2 and "SMS budget spent: hourly" in alerts()[1]

    refused = [signup(api, phone) for phone in phones[5:]]

    assert statuses == [200] * 5
    assert [r.status_code for r in refused] == [503] * 3
    assert refused[0].json()["detail"] == "We cannot send more codes right now. Try again later."
    now = timezone.now()
    hour_end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert abs(int(refused[0]["Retry-After"]) - (hour_end - now).total_seconds()) <= 2
    assert len(alerts()) == 2  # once per window
    assert Message.objects.filter(channel="sms").count() == 5
    assert set(CodeRefusal.objects.values_list("reason", flat=True)) == {"budget_hour"}


def test_the_daily_sms_budget_refuses_with_its_own_reason(api, settings):
    settings.OTP_DELIVERY_BACKENDS = ["sms"]
    settings.OTP_SMS_BUDGET_PER_HOUR, settings.OTP_SMS_BUDGET_PER_DAY = 100, 2
    assert [signup(api, f"+7999{n:03d}0000").status_code for n in range(100, 103)] == [200, 200, 503]
    assert CodeRefusal.objects.get().reason == "budget_day"
    assert "SMS budget spent: daily" in alerts()[-1]


def test_codes_by_free_channels_do_not_spend_the_sms_budget(api, settings):
    settings.OTP_DELIVERY_BACKENDS = ["file", "email"]
    settings.OTP_SMS_BUDGET_PER_HOUR = 1
    assert [signup(api, f"+7999{n:03d}0000").status_code for n in range(100, 103)] == [200] * 3


# --- 5. The conversion watch ------------------------------------------------------------------


def settled_codes(prefix: str, *, issued: int, used: int, country="RU", ago=timedelta(minutes=10)):
    """`issued` codes to numbers of `prefix`, made `ago`, expired by now, `used` of them entered."""
    made = timezone.now() - ago
    for n in range(issued):
        code = PhoneCode.objects.create(
            phone=f"{prefix}{n:04d}",
            code_hash="x" * 64,
            ip_key="10.9.9.9",
            expires_at=made + timedelta(minutes=5),
            consumed_at=made + timedelta(minutes=1) if n < used else None,
            country=country,
            prefix=prefix,
        )
        PhoneCode.objects.filter(pk=code.pk).update(created_at=made)


def test_a_prefix_whose_codes_are_rarely_entered_is_blocked_for_an_hour_with_one_alert(api, settings):
    settled_codes("+7999555", issued=20, used=3)  # 15 %
    settled_codes("+7999666", issued=20, used=4)  # 20 %: not fewer than the rate
    settled_codes("+7999777", issued=19, used=0)  # too few codes to judge
    settled_codes("+7999888", issued=40, used=40)  # the country as a whole: 47 of 99 used

    blocks = guard_watch(now=timezone.now())

    assert {(scope, key) for scope, key, _, _ in blocks} == {("prefix", "+7999555")}
    refused = signup(api, "+79995559999")
    assert refused.status_code == 429
    assert refused.json()["detail"] == "Codes to numbers like this one are paused. Try again later."
    assert 3590 <= int(refused["Retry-After"]) <= 3600
    assert signup(api, "+79996669999").status_code == 200
    assert signup(api, "+79997779999").status_code == 200
    (alert,) = alerts()
    assert "prefix +7999555: 3 of 20 used" in alert
    guard_watch(now=timezone.now())  # still blocked: no second alert
    assert len(alerts()) == 1


def test_a_country_whose_codes_are_rarely_entered_is_blocked(api, settings):
    for n in range(5):
        settled_codes(f"+799950{n}", issued=5, used=0)

    guard_watch(now=timezone.now())

    assert GuardBlock.objects.get(scope="country").key == "RU"
    assert signup(api, "+79161234567").status_code == 429
    assert CodeRefusal.objects.get().reason == "conversion_block"


def test_codes_still_waiting_for_their_owner_do_not_count_against_the_prefix(api, settings):
    now = timezone.now()
    for n in range(30):
        PhoneCode.objects.create(
            phone=f"+7999555{n:04d}",
            code_hash="x" * 64,
            ip_key="k",
            expires_at=now + timedelta(minutes=4),
            country="RU",
            prefix="+7999555",
        )
    assert guard_watch(now=now) == []


def test_a_block_ends_after_an_hour(api, settings):
    settled_codes("+7999555", issued=20, used=0)
    guard_watch(now=timezone.now())
    assert signup(api, "+79995559999").status_code == 429
    GuardBlock.objects.update(until=timezone.now() - timedelta(seconds=1))

    assert signup(api, "+79995559999").status_code == 200


# --- 6. Records and the allow-list ------------------------------------------------------------


def test_every_refusal_is_a_row_that_outlives_the_refused_request(api, settings):
    settings.OTP_SENDS_PER_PREFIX_PER_HOUR = 1
    signup(api, "+79991230001", ip="10.0.0.1")
    signup(api, "+79991230001", ip="10.0.0.1")  # the cooldown
    signup(api, "+79991230002", ip="10.0.0.2")  # the prefix
    signup(api, "+14155552671", ip="10.0.0.3")  # the country
    signup(api, "not a phone", ip="10.0.0.4")  # malformed: no rule refused it

    rows = list(CodeRefusal.objects.order_by("id").values_list("reason", "phone", "ip_key", "country", "prefix"))
    assert rows == [
        ("cooldown", "+79991230001", "10.0.0.1", "RU", "+7999123"),
        ("prefix_velocity", "+79991230002", "10.0.0.2", "RU", "+7999123"),
        ("region", "+14155552671", "10.0.0.3", "", ""),
    ]
    assert PhoneCode.objects.count() == 1


@pytest.mark.parametrize(
    ("kind", "value"),
    [("phone", "8 (999) 123-00-09"), ("prefix", "+7999"), ("country", "ru"), ("address", "10.7.7.7")],
)
def test_an_allow_list_entry_skips_the_prefix_velocity_budget_and_blocks(api, settings, kind, value):
    from accounts.guard import guard_allow_value

    settings.OTP_SENDS_PER_PREFIX_PER_HOUR = 1
    settings.OTP_DELIVERY_BACKENDS = ["sms"]
    settings.OTP_SMS_BUDGET_PER_HOUR = 1
    GuardAllow.objects.create(kind=kind, value=guard_allow_value(kind=kind, value=value))
    GuardBlock.objects.create(
        scope="prefix",
        key="+7999123",
        issued=20,
        used=0,
        created_at=timezone.now(),
        until=timezone.now() + timedelta(hours=1),
    )

    assert signup(api, "+79991230009", ip="10.7.7.7").status_code == 200
    assert signup(api, "+79991230009", ip="10.7.7.7").status_code == 429  # the send limits still hold
    assert CodeRefusal.objects.last().reason == "cooldown"


def test_the_allow_list_never_skips_a_codes_try_cap(api, settings):
    settings.OTP_MAX_ATTEMPTS_PER_IP = 2
    GuardAllow.objects.create(kind="phone", value="+79991230009")
    code = signup(api, "+79991230009").json()["confirmation_code"]
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    for _ in range(2):
        assert api.post(TOKEN, {"phone": "+79991230009", "confirmation_code": wrong}, format="json").status_code == 400

    right = api.post(TOKEN, {"phone": "+79991230009", "confirmation_code": code}, format="json")

    assert right.status_code == 400 and "token" not in right.json()


def test_the_refusals_are_listed_in_the_admin_with_counts_for_staff_with_the_view_permission(client):
    for reason in ("region", "region", "prefix_velocity"):
        CodeRefusal.objects.create(phone="+1", ip_key="k", reason=reason, created_at=timezone.now())
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/accounts/coderefusal/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_coderefusal"))

    page = client.get("/admin/accounts/coderefusal/?reason=region").content.decode()

    assert "region (2)" in page and "prefix_velocity (1)" in page  # the reason filter's counts
    assert "2 code refusals" in page


def test_staff_with_the_add_permission_add_an_allow_list_entry_in_the_admin_normalised(client):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    form = {"kind": "phone", "value": "8 (999) 123-45-67", "note": "app review"}
    assert client.post("/admin/accounts/guardallow/add/", form).status_code == 403
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["add_guardallow", "view_guardallow"]))

    assert client.post("/admin/accounts/guardallow/add/", form).status_code == 302
    bad = client.post("/admin/accounts/guardallow/add/", {"kind": "prefix", "value": "79x"})

    assert GuardAllow.objects.get().value == "+79991234567"
    assert bad.status_code == 200 and "Enter a prefix" in bad.content.decode()


# --- 7. Test numbers --------------------------------------------------------------------------


def test_a_test_number_logs_in_with_its_fixed_code_and_nothing_is_sent_or_queued(api, settings, tmp_path):
    settings.OTP_TEST_NUMBERS = {"+79990000001": "1234"}
    settings.OTP_FAKE_DELIVERY = False
    settings.OTP_DELIVERY_BACKENDS = ["file", "sms"]

    assert signup(api, "8 999 000 00 01").status_code == 200
    login = api.post(TOKEN, {"phone": "+79990000001", "confirmation_code": "1234"}, format="json")

    assert login.status_code == 200 and "token" in login.json()
    assert not Message.objects.exists()
    assert not settings.SENT_MESSAGES_DIR.exists() or not any(settings.SENT_MESSAGES_DIR.iterdir())
    assert PhoneCode.objects.get().code_hash == code_hash(phone="+79990000001", code="1234")


def test_a_test_number_skips_the_send_limits_and_the_guard(api, settings):
    settings.OTP_TEST_NUMBERS = {"+79990000001": "1234"}
    settings.OTP_ALLOWED_REGIONS = ["US"]
    settings.OTP_SENDS_PER_PREFIX_PER_HOUR = 1
    settings.OTP_SENDS_PER_IP_PER_HOUR = 1

    assert [signup(api, "+79990000001", ip="10.0.0.1").status_code for _ in range(12)] == [200] * 12
    assert not CodeRefusal.objects.exists()


def test_a_test_numbers_code_still_has_its_try_cap(api, settings):
    settings.OTP_TEST_NUMBERS = {"+79990000001": "1234"}
    settings.OTP_MAX_ATTEMPTS_PER_IP = 2
    signup(api, "+79990000001")
    for _ in range(2):
        api.post(TOKEN, {"phone": "+79990000001", "confirmation_code": "0000"}, format="json")

    right = api.post(TOKEN, {"phone": "+79990000001", "confirmation_code": "1234"}, format="json")

    assert right.status_code == 400
    assert right.json() == {"confirmation_code": ["Too many wrong tries. Request a new code."]}


# --- 8. The pages give the same answers -------------------------------------------------------


def test_the_pages_refuse_another_country_and_a_spent_budget_with_the_apis_messages(client, settings):
    settings.OTP_DELIVERY_BACKENDS = ["sms"]
    settings.OTP_SMS_BUDGET_PER_HOUR = 1
    foreign = client.post("/", {"phone": "+14155552671"}, REMOTE_ADDR=address())
    assert foreign.status_code == 400 and "We cannot send codes to this country." in foreign.content.decode()
    assert client.post("/", {"phone": "+79991230001"}, REMOTE_ADDR=address()).status_code == 302

    spent = client.post("/", {"phone": "+79991240001"}, REMOTE_ADDR=address())

    assert spent.status_code == 503
    assert "We cannot send more codes right now." in spent.content.decode()
    assert list(CodeRefusal.objects.order_by("id").values_list("reason", flat=True)) == ["region", "budget_hour"]
