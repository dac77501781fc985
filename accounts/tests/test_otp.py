"""The login-code rules of DESIGN.md, through the API a client uses."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import PhoneCode, User
from accounts.services import code_hash

SIGNUP = "/api/v1/auth/signup/"
TOKEN = "/api/v1/auth/token/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


def signup(api, phone="+79991234567", **extra):
    return api.post(SIGNUP, {"phone": phone}, format="json", **extra)


def login(api, phone, code, **extra):
    return api.post(TOKEN, {"phone": phone, "confirmation_code": code}, format="json", **extra)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10_000:04d}"


@pytest.mark.parametrize("spelling", ["+7 (999) 123-45-67", "89991234567", "+79991234567", "8 999 123 45 67"])
def test_it_normalises_every_spelling_to_e164(api, spelling):
    answer = signup(api, spelling)
    assert answer.status_code == 200
    assert answer.json()["phone"] == "+79991234567"


def test_several_spellings_log_into_one_user(api, settings):
    settings.OTP_RESEND_COOLDOWN_S = 0
    for spelling in ["+7 (999) 123-45-67", "89991234567", "+79991234567"]:
        code = signup(api, spelling).json()["confirmation_code"]
        assert login(api, spelling, code).status_code == 200
    assert User.objects.filter(phone="+79991234567").count() == 1
    assert User.objects.count() == 1


@pytest.mark.parametrize("bad", ["", "abc", "123", "+7999", "+7999123456789012", "9" * 500, "+999123"])
def test_it_rejects_an_invalid_phone_with_a_message(api, bad):
    answer = signup(api, bad)
    assert answer.status_code == 400
    assert answer.json()["phone"][0]


@pytest.mark.parametrize("body", [{}, {"phone": None}, {"phone": 79991234567}, {"phone": ["+79991234567"]}, [], "x"])
def test_it_answers_400_to_a_body_without_a_usable_phone(api, body):
    answer = api.post(SIGNUP, body, format="json")
    assert answer.status_code == 400


def test_the_code_is_four_digits_and_only_its_hmac_is_stored(api):
    code = signup(api).json()["confirmation_code"]
    assert len(code) == 4 and code.isdigit()
    challenge = PhoneCode.objects.get()
    assert code not in challenge.code_hash
    assert challenge.code_hash == code_hash(phone="+79991234567", code=code)


def test_the_code_is_not_in_the_answer_without_fake_delivery(api, settings):
    settings.OTP_FAKE_DELIVERY = False
    answer = signup(api)
    assert answer.status_code == 200
    assert "confirmation_code" not in answer.json()


def test_login_gives_a_jwt_pair_and_creates_the_user_once(api):
    code = signup(api).json()["confirmation_code"]
    answer = login(api, "89991234567", code)
    assert answer.status_code == 200
    assert set(answer.json()) == {"token", "refresh"}
    user = User.objects.get()
    assert user.phone == "+79991234567"
    assert len(user.ref_code) == 6
    assert not user.has_usable_password()


@pytest.mark.parametrize("returning", [False, True], ids=["first_login", "returning_user"])
def test_the_refresh_token_is_recorded_with_the_codes_use_or_neither_is(api, returning):
    """The refresh token's row (written in on_login) commits with the code's use. When it cannot
    be written (here a token id already taken), nothing is: no user is created, and the code
    still works."""
    from django.db import IntegrityError
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.services import code_verify

    code = signup(api).json()["confirmation_code"]
    if returning:
        User.objects.create_user(phone="+79991234567")
    taken = RefreshToken.for_user(User.objects.create_user(phone="+79990000000"))

    def clashing(user):
        OutstandingToken.objects.create(user=user, jti=taken["jti"], token="x", expires_at=timezone.now())

    with pytest.raises(IntegrityError):
        code_verify(phone="+79991234567", code=code, ip="127.0.0.1", on_login=clashing)
    assert (User.objects.filter(phone="+79991234567").count(), OutstandingToken.objects.count()) == (int(returning), 1)
    assert PhoneCode.objects.get().consumed_at is None
    answer = login(api, "+79991234567", code)
    assert answer.status_code == 200
    jti = RefreshToken(answer.json()["refresh"])["jti"]
    assert OutstandingToken.objects.get(user__phone="+79991234567").jti == jti


def test_the_token_opens_an_authenticated_endpoint(api):
    code = signup(api).json()["confirmation_code"]
    token = login(api, "+79991234567", code).json()["token"]
    assert api.get("/api/v1/my_profile/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    answer = api.get("/api/v1/my_profile/")
    assert answer.status_code == 200
    assert answer.json()[0]["phone"] == "+79991234567"


def test_a_code_works_only_once(api):
    code = signup(api).json()["confirmation_code"]
    assert login(api, "+79991234567", code).status_code == 200
    again = login(api, "+79991234567", code)
    assert again.status_code == 400
    assert "confirmation_code" in again.json()


def test_an_expired_code_is_refused(api):
    code = signup(api).json()["confirmation_code"]
    PhoneCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = login(api, "+79991234567", code)
    assert answer.status_code == 400
    assert User.objects.count() == 0


def test_the_code_expires_after_the_configured_lifetime(api, settings):
    settings.OTP_TTL_S = 120
    before = timezone.now()
    signup(api)
    lifetime = PhoneCode.objects.get().expires_at - before
    assert timedelta(seconds=119) < lifetime <= timedelta(seconds=121)


def test_five_wrong_tries_from_one_address_end_its_tries_at_the_code(api, settings):
    code = signup(api).json()["confirmation_code"]
    for _ in range(settings.OTP_MAX_ATTEMPTS_PER_IP):
        assert login(api, "+79991234567", wrong(code)).status_code == 400
    burned = login(api, "+79991234567", code)
    assert burned.status_code == 400
    assert "Too many wrong tries" in burned.json()["confirmation_code"][0]
    assert User.objects.count() == 0


def test_four_wrong_tries_still_leave_the_right_code_usable(api, settings):
    code = signup(api).json()["confirmation_code"]
    for _ in range(settings.OTP_MAX_ATTEMPTS_PER_IP - 1):
        login(api, "+79991234567", wrong(code))
    assert login(api, "+79991234567", code).status_code == 200


def test_a_malformed_code_is_a_400_and_costs_no_try(api):
    code = signup(api).json()["confirmation_code"]
    for bad in ["", "12", "12345", "abcd", "١٢٣٤"]:
        answer = login(api, "+79991234567", bad)
        assert answer.status_code == 400
        assert answer.json()["confirmation_code"]
    assert PhoneCode.objects.get().attempts == 0
    assert login(api, "+79991234567", code).status_code == 200


def test_only_the_latest_code_counts(api, settings):
    settings.OTP_RESEND_COOLDOWN_S = 0
    first = signup(api).json()["confirmation_code"]
    second = signup(api).json()["confirmation_code"]
    if first != second:
        assert login(api, "+79991234567", first).status_code == 400
    assert login(api, "+79991234567", second).status_code == 200


def test_a_new_code_within_the_cooldown_is_429_with_retry_after(api, settings):
    assert signup(api).status_code == 200
    again = signup(api, "8 999 123-45-67")
    assert again.status_code == 429
    retry_after = int(again["Retry-After"])
    assert 1 <= retry_after <= settings.OTP_RESEND_COOLDOWN_S
    assert again.json()["detail"]


def test_a_new_code_after_the_cooldown_is_sent(api, settings):
    signup(api)
    PhoneCode.objects.update(created_at=timezone.now() - timedelta(seconds=settings.OTP_RESEND_COOLDOWN_S + 1))
    assert signup(api).status_code == 200


def test_the_hourly_cap_per_phone_and_address_is_429_until_the_oldest_leaves_the_window(api, settings):
    settings.OTP_RESEND_COOLDOWN_S = 0
    for _ in range(settings.OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR):
        assert signup(api).status_code == 200
    capped = signup(api)
    assert capped.status_code == 429
    assert 3500 < int(capped["Retry-After"]) <= 3600
    PhoneCode.objects.filter(pk=PhoneCode.objects.order_by("created_at").first().pk).update(
        created_at=timezone.now() - timedelta(hours=1, seconds=1)
    )
    assert signup(api).status_code == 200


def test_the_hourly_cap_per_ip_counts_different_phones(api, settings):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 3
    for i in range(3):
        assert signup(api, f"+7999000000{i}", REMOTE_ADDR="10.1.2.3").status_code == 200
    capped = signup(api, "+79990000009", REMOTE_ADDR="10.1.2.3")
    assert capped.status_code == 429
    assert int(capped["Retry-After"]) > 0
    assert signup(api, "+79990000009", REMOTE_ADDR="10.1.2.4").status_code == 200


def test_forwarded_for_from_an_untrusted_client_does_not_change_the_counted_ip(api, settings):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 1
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert signup(api, "+79990000001", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 200
    spoofed = signup(api, "+79990000002", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="2.2.2.2")
    assert spoofed.status_code == 429
    assert set(PhoneCode.objects.values_list("ip", flat=True)) == {"10.1.2.3"}


def test_forwarded_for_from_a_trusted_proxy_names_the_client(api, settings):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 1
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    assert signup(api, "+79990000001", HTTP_X_FORWARDED_FOR="spoof, 10.0.0.1", **proxy).status_code == 200
    assert signup(api, "+79990000002", HTTP_X_FORWARDED_FOR="10.0.0.2", **proxy).status_code == 200
    assert signup(api, "+79990000003", HTTP_X_FORWARDED_FOR="10.0.0.1", **proxy).status_code == 429
    assert set(PhoneCode.objects.values_list("ip", flat=True)) == {"10.0.0.1", "10.0.0.2"}


def test_the_answer_does_not_reveal_whether_a_phone_is_registered(api, settings):
    settings.OTP_FAKE_DELIVERY = False
    User.objects.create_user(phone="+79990000001")
    known = signup(api, "+79990000001")
    unknown = signup(api, "+79990000002")
    assert known.status_code == unknown.status_code == 200
    assert known.json()["detail"] == unknown.json()["detail"]
    assert set(known.json()) == set(unknown.json())


def test_a_disabled_user_cannot_log_in(api):
    User.objects.create_user(phone="+79991234567", is_active=False)
    code = signup(api).json()["confirmation_code"]
    assert login(api, "+79991234567", code).status_code == 400


def test_a_login_for_a_phone_without_a_code_is_refused(api):
    answer = login(api, "+79991234567", "1234")
    assert answer.status_code == 400
    assert answer.json()["confirmation_code"]


@pytest.mark.postgres
def test_a_signup_takes_the_locks_checks_the_limits_and_the_guard_and_writes_every_row_in_four_statements(
    api, settings
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import Message

    settings.OTP_DELIVERY_BACKENDS = ["file", "sms"]
    with CaptureQueriesContext(connection) as queries:
        assert signup(api).status_code == 200
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # The locks and the send limits (one function call), the fraud guard (its allow-list, blocks
    # and counters: the prefix and both SMS budget windows, one statement), the code row, then
    # both messages in one INSERT.
    assert len(statements) == 4, statements
    assert statements[0].startswith("SELECT * FROM accounts_send_limits(")
    assert statements[1].startswith("SELECT * FROM accounts_guard_check(")
    assert statements[2].startswith('INSERT INTO "accounts_phonecode"')
    assert statements[3].startswith('INSERT INTO "notifications_message"') and statements[3].count("RETURNING") == 1
    challenge = PhoneCode.objects.get()
    assert challenge.phone == "+79991234567" and challenge.created_at is not None
    messages = Message.objects.order_by("id")
    assert [(m.channel, m.recipient, m.sensitive, m.status) for m in messages] == [
        ("file", "+79991234567", True, "pending"),
        ("sms", "+79991234567", True, "pending"),
    ]
    assert messages[0].body == messages[1].body and messages[0].body.startswith("Your login code: ")


@pytest.mark.django_db(transaction=True)
def test_a_wrong_try_runs_the_same_statements_for_a_registered_and_an_unregistered_phone(api):
    """How long a wrong try takes must not tell whether the phone has an account."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services import code_verify
    from project.exceptions import AuthenticationFailed

    User.objects.create_user(phone="+79991234567")
    seen = []
    for phone in ("+79991234567", "+79997654321"):
        code = signup(api, phone).json()["confirmation_code"]
        with CaptureQueriesContext(connection) as queries, pytest.raises(AuthenticationFailed):
            code_verify(phone=phone, code=wrong(code), ip="10.1.2.3")
        seen.append([q["sql"] for q in queries.captured_queries])
        assert PhoneCode.objects.get(phone=phone).attempts == 1  # counted, and committed
    literals = re.compile(r"'[^']*'")  # the phones and the hashes differ, the statements must not
    assert [literals.sub("?", sql) for sql in seen[0]] == [literals.sub("?", sql) for sql in seen[1]]
    assert len(seen[0]) == 3  # BEGIN, the try (it takes the address's lock), COMMIT: nothing reads the user


# --- which address is counted (issue 19.5) ---------------------------------------------------


def test_ipv6_addresses_of_one_64_share_the_hourly_cap_per_address(api, settings):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 3
    for i, host in enumerate(["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa:bbbb:cccc:dddd"]):
        assert signup(api, f"+7999000000{i}", REMOTE_ADDR=host).status_code == 200
    capped = signup(api, "+79990000009", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert capped.status_code == 429
    assert int(capped["Retry-After"]) > 0
    assert signup(api, "+79990000009", REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


def test_the_ipv6_prefix_counted_is_a_setting(api, settings):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 1
    settings.OTP_IPV6_PREFIX = 48
    assert signup(api, "+79990000001", REMOTE_ADDR="2001:db8:1:2::1").status_code == 200
    assert signup(api, "+79990000002", REMOTE_ADDR="2001:db8:1:ffff::1").status_code == 429
    assert signup(api, "+79990000002", REMOTE_ADDR="2001:db8:2::1").status_code == 200


def test_ipv4_is_counted_per_address_also_when_it_comes_ipv4_mapped(api, settings):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 1
    assert signup(api, "+79990000001", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert signup(api, "+79990000002", REMOTE_ADDR="::ffff:10.1.2.3").status_code == 429
    # Not one /64 for every IPv4 client.
    assert signup(api, "+79990000002", REMOTE_ADDR="::ffff:10.1.2.4").status_code == 200


@pytest.mark.parametrize("forwarded_for", ["not-an-ip", "10.0.0.1, garbage", "999.1.1.1", "::g"])
def test_a_trusted_proxys_unparseable_forwarded_for_is_counted_under_the_proxys_address(api, settings, forwarded_for):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 1
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    proxy = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": forwarded_for}
    assert signup(api, "+79990000001", **proxy).status_code == 200
    assert signup(api, "+79990000002", **proxy).status_code == 429
    assert signup(api, "+79990000003", REMOTE_ADDR="127.0.0.1").status_code == 429


@pytest.mark.parametrize("remote_addr", ["", "unix:/run/gunicorn.sock"])
def test_a_client_without_a_usable_address_is_still_capped(api, settings, remote_addr):
    settings.OTP_SENDS_PER_IP_PER_HOUR = 1
    assert signup(api, "+79990000001", REMOTE_ADDR=remote_addr).status_code == 200
    assert signup(api, "+79990000002", REMOTE_ADDR=remote_addr).status_code == 429
    assert signup(api, "+79990000003", REMOTE_ADDR="10.1.2.3").status_code == 200


# --- wrong tries per address (issue 19.6) ----------------------------------------------------


def codes_for(api, count: int) -> dict[str, str]:
    """`count` phones with a fresh code each, asked for from addresses of their own."""
    phones = [f"+799900001{i:02d}" for i in range(count)]
    return {p: signup(api, p, REMOTE_ADDR=f"10.9.0.{i + 1}").json()["confirmation_code"] for i, p in enumerate(phones)}


def test_wrong_tries_at_many_phones_from_one_address_are_capped_per_hour_with_retry_after(api, settings):
    settings.OTP_TRIES_PER_IP_PER_HOUR = 3
    codes = codes_for(api, 5)
    phones = list(codes)
    for phone in phones[:3]:
        assert login(api, phone, wrong(codes[phone]), REMOTE_ADDR="10.1.2.3").status_code == 400
    capped = login(api, phones[3], wrong(codes[phones[3]]), REMOTE_ADDR="10.1.2.3")
    assert capped.status_code == 429
    assert 3500 < int(capped["Retry-After"]) <= 3600
    assert capped.json()["detail"] == "Too many wrong codes from this address. Try again later."
    # Capped means not tried at all: the right code from there gets the same answer.
    assert login(api, phones[3], codes[phones[3]], REMOTE_ADDR="10.1.2.3").status_code == 429
    assert login(api, phones[3], codes[phones[3]], REMOTE_ADDR="10.1.2.4").status_code == 200


def test_the_tries_cap_per_address_counts_an_ipv6_64_as_one_address(api, settings):
    settings.OTP_TRIES_PER_IP_PER_HOUR = 2
    codes = codes_for(api, 3)
    phones = list(codes)
    assert login(api, phones[0], wrong(codes[phones[0]]), REMOTE_ADDR="2001:db8:5:6::1").status_code == 400
    assert login(api, phones[1], wrong(codes[phones[1]]), REMOTE_ADDR="2001:db8:5:6::2").status_code == 400
    assert login(api, phones[2], wrong(codes[phones[2]]), REMOTE_ADDR="2001:db8:5:6:1::3").status_code == 429


def test_right_codes_do_not_use_up_the_tries_of_an_address(api, settings):
    settings.OTP_TRIES_PER_IP_PER_HOUR = 1
    codes = codes_for(api, 3)
    for phone, code in codes.items():
        assert login(api, phone, code, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert login(api, "+79990000999", "1234", REMOTE_ADDR="10.1.2.3").status_code == 400  # no code: no try


def test_wrong_tries_of_an_address_count_again_once_they_leave_the_hour(api, settings):
    from accounts.models import WrongTry

    settings.OTP_TRIES_PER_IP_PER_HOUR = 1
    codes = codes_for(api, 2)
    first, second = codes
    assert login(api, first, wrong(codes[first]), REMOTE_ADDR="10.1.2.3").status_code == 400
    assert login(api, second, wrong(codes[second]), REMOTE_ADDR="10.1.2.3").status_code == 429
    WrongTry.objects.update(created_at=timezone.now() - timedelta(hours=1, seconds=1))
    assert login(api, second, codes[second], REMOTE_ADDR="10.1.2.3").status_code == 200


# --- no single address can lock a phone out (issue 19.7) --------------------------------------


def test_wrong_tries_from_one_address_leave_the_code_usable_from_another(api, settings):
    code = signup(api).json()["confirmation_code"]
    for _ in range(settings.OTP_MAX_ATTEMPTS_PER_IP):
        assert login(api, "+79991234567", wrong(code), REMOTE_ADDR="10.6.6.6").status_code == 400
    refused = login(api, "+79991234567", code, REMOTE_ADDR="10.6.6.6")
    assert refused.status_code == 400
    assert "Too many wrong tries" in refused.json()["confirmation_code"][0]
    assert login(api, "+79991234567", code, REMOTE_ADDR="10.1.1.1").status_code == 200


def test_a_code_dies_after_its_wrong_tries_from_all_addresses_together(api, settings):
    code = signup(api).json()["confirmation_code"]
    per_ip = settings.OTP_MAX_ATTEMPTS_PER_IP
    for i in range(settings.OTP_MAX_ATTEMPTS):
        assert login(api, "+79991234567", wrong(code), REMOTE_ADDR=f"10.6.6.{i // per_ip + 1}").status_code == 400
    burned = login(api, "+79991234567", code, REMOTE_ADDR="10.1.1.1")
    assert burned.status_code == 400
    assert "Too many wrong tries" in burned.json()["confirmation_code"][0]
    assert User.objects.count() == 0


def test_codes_asked_for_from_one_address_do_not_block_the_phone_for_another(api, settings):
    settings.OTP_RESEND_COOLDOWN_S = 0
    for _ in range(settings.OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR):
        assert signup(api, REMOTE_ADDR="10.6.6.6").status_code == 200
    capped = signup(api, REMOTE_ADDR="10.6.6.6")
    assert capped.status_code == 429
    assert capped.json()["detail"] == "Too many codes for this phone from this address. Try again later."
    assert signup(api, REMOTE_ADDR="10.1.1.1").status_code == 200


def test_the_cooldown_holds_per_address(api):
    assert signup(api, REMOTE_ADDR="10.6.6.6").status_code == 200
    assert signup(api, REMOTE_ADDR="10.6.6.6").status_code == 429
    assert signup(api, REMOTE_ADDR="10.1.1.1").status_code == 200


def test_the_hourly_cap_per_phone_counts_every_address_together(api, settings):
    settings.OTP_RESEND_COOLDOWN_S = 0
    cap = settings.OTP_SENDS_PER_PHONE_PER_HOUR
    for i in range(cap):
        assert signup(api, REMOTE_ADDR=f"10.6.7.{i + 1}").status_code == 200
    capped = signup(api, REMOTE_ADDR="10.1.1.1")
    assert capped.status_code == 429
    assert capped.json()["detail"] == "Too many codes for this phone. Try again later."
    assert 3500 < int(capped["Retry-After"]) <= 3600
