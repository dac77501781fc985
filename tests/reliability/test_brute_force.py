"""Guessing login codes does not pay: the limits of DESIGN.md at attack scale, on PostgreSQL,
through the API an attacker would use, many requests in parallel.

The figures each test measures are printed (pytest -s shows them; SECURITY.md quotes them).
"""

import random
from collections import Counter
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from accounts.models import PhoneCode, User
from tests.factories import phone_spread

from .parallel import errors, run_parallel

SIGNUP = "/api/v1/auth/signup/"
TOKEN = "/api/v1/auth/token/"
PHONE = "+79991234567"

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    # The test needs to know the real code to prove that even it stops working.
    settings.OTP_FAKE_DELIVERY = True


def signup(client, phone=PHONE, **extra):
    return client.post(SIGNUP, {"phone": phone}, format="json", **extra)


def guess(client, code, phone=PHONE):
    return client.post(TOKEN, {"phone": phone, "confirmation_code": code}, format="json")


def all_codes_ending_with(code: str) -> list[str]:
    """Every 4-digit code once, the right one last."""
    start = int(code) + 1
    return [f"{(start + i) % 10_000:04d}" for i in range(10_000)]


@pytest.mark.slow
def test_ten_thousand_guesses_covering_every_code_give_no_login(settings):
    code = signup(APIClient()).json()["confirmation_code"]
    guesses = all_codes_ending_with(code)
    threads = 10
    chunks = [guesses[i::threads] for i in range(threads)]
    # The right code is the last guess of the last chunk: its own thread has made 999 wrong
    # guesses before it, so its address has used up its OTP_MAX_ATTEMPTS_PER_IP tries by then.
    chunks[-1].remove(code)
    chunks[-1].append(code)

    def attack(chunk, address):
        client = APIClient(REMOTE_ADDR=address)
        return Counter(guess(client, g).status_code for g in chunk)

    # Each thread from an address of its own: the code's tries from all addresses are counted.
    results = run_parallel([lambda c=c, i=i: attack(c, f"198.51.100.{i + 1}") for i, c in enumerate(chunks)])
    assert errors(results) == []
    statuses = sum(results, Counter())
    print(f"\nguesses tried: {sum(statuses.values())}, logins gained: {statuses[200]}, answers: {dict(statuses)}")
    assert sum(statuses.values()) == 10_000
    assert statuses == {400: 10_000}
    assert User.objects.count() == 0
    challenge = PhoneCode.objects.get()
    assert challenge.attempts == settings.OTP_MAX_ATTEMPTS
    assert challenge.consumed_at is None


@pytest.mark.parametrize("registered", [False, True], ids=["first_login", "returning_user"])
def test_parallel_wrong_guesses_from_fifty_addresses_count_exactly_ten_tries_and_burn_the_code(settings, registered):
    if registered:
        User.objects.create_user(phone=PHONE)
    code = signup(APIClient()).json()["confirmation_code"]
    wrong = [c for c in all_codes_ending_with(code) if c != code][:50]
    addresses = [f"198.51.100.{i + 1}" for i in range(50)]
    results = run_parallel(
        [lambda g=g, a=a: guess(APIClient(REMOTE_ADDR=a), g) for g, a in zip(wrong, addresses, strict=True)]
    )
    assert errors(results) == []
    messages = Counter(r.json()["confirmation_code"][0] for r in results)
    assert {r.status_code for r in results} == {400}
    assert sum(n for m, n in messages.items() if m.startswith("Wrong")) == settings.OTP_MAX_ATTEMPTS
    assert PhoneCode.objects.get().attempts == settings.OTP_MAX_ATTEMPTS
    assert guess(APIClient(REMOTE_ADDR="203.0.113.99"), code).status_code == 400
    assert User.objects.count() == int(registered)


def test_parallel_wrong_guesses_from_one_address_count_exactly_five_tries_and_leave_the_code_to_others(settings):
    code = signup(APIClient()).json()["confirmation_code"]
    wrong = [c for c in all_codes_ending_with(code) if c != code][:50]
    results = run_parallel([lambda g=g: guess(APIClient(REMOTE_ADDR="203.0.113.7"), g) for g in wrong])
    assert errors(results) == []
    messages = Counter(r.json()["confirmation_code"][0] for r in results)
    assert sum(n for m, n in messages.items() if m.startswith("Wrong")) == settings.OTP_MAX_ATTEMPTS_PER_IP
    assert PhoneCode.objects.get().attempts == settings.OTP_MAX_ATTEMPTS_PER_IP
    assert guess(APIClient(REMOTE_ADDR="203.0.113.7"), code).status_code == 400
    assert guess(APIClient(REMOTE_ADDR="203.0.113.8"), code).status_code == 200


def test_the_hourly_cap_on_wrong_tries_per_address_holds_for_parallel_tries_at_many_phones(settings):
    phones = [phone_spread(i, 557) for i in range(60)]
    codes = {
        p: signup(APIClient(), p, REMOTE_ADDR=f"198.51.100.{i + 1}").json()["confirmation_code"]
        for i, p in enumerate(phones)
    }

    def one(phone):
        return guess(APIClient(), all_codes_ending_with(codes[phone])[0], phone)  # a wrong code

    results = run_parallel([lambda p=p: one(p) for p in phones])
    assert errors(results) == []
    statuses = Counter(r.status_code for r in results)
    print(f"\n60 wrong tries at 60 phones from one address: {dict(statuses)}")
    cap = settings.OTP_TRIES_PER_IP_PER_HOUR
    assert statuses == {400: cap, 429: 60 - cap}
    assert sum(PhoneCode.objects.values_list("attempts", flat=True)) == cap
    assert all(int(r["Retry-After"]) > 3500 for r in results if r.status_code == 429)


def _let_time_pass(seconds: float):
    """Move every code into the past instead of waiting (the limits read created_at)."""
    for challenge in PhoneCode.objects.all():
        PhoneCode.objects.filter(pk=challenge.pk).update(created_at=challenge.created_at - timedelta(seconds=seconds))


def test_an_hour_of_attack_on_one_phone_counts_at_most_25_guesses(settings):
    """From one address: cooldown, hourly cap and attempts together: 5 codes x 5 tries, then
    429 for the hour (tests/reliability/test_lockout.py has the attacks from many addresses)."""
    client = APIClient()
    codes_sent = refused_requests = logins = 0
    for _ in range(60):  # one attempt a minute for an hour
        answer = signup(client)
        if answer.status_code == 429:
            refused_requests += 1
            assert int(answer["Retry-After"]) >= 1
        else:
            assert answer.status_code == 200
            codes_sent += 1
            code = answer.json()["confirmation_code"]
            for candidate in all_codes_ending_with(code)[: settings.OTP_MAX_ATTEMPTS + 20]:
                logins += guess(client, candidate).status_code == 200
        _let_time_pass(60)
    counted = sum(PhoneCode.objects.values_list("attempts", flat=True))
    print(f"\ncodes sent: {codes_sent}, counted guesses: {counted}, logins: {logins}, 429s: {refused_requests}")
    assert codes_sent == settings.OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR
    assert counted == settings.OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR * settings.OTP_MAX_ATTEMPTS_PER_IP
    assert logins == 0


@pytest.mark.parametrize("trusted_proxies", [[], ["127.0.0.1"]])
def test_the_hourly_cap_per_ip_holds_for_parallel_requests_with_spoofed_forwarded_for(settings, trusted_proxies):
    settings.TRUSTED_PROXIES = trusted_proxies

    def one(i):
        spoof = f"{random.randint(1, 223)}.{i}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        return signup(APIClient(), phone_spread(i, 555), REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=spoof)

    results = run_parallel([lambda i=i: one(i) for i in range(50)])
    assert errors(results) == []
    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: settings.OTP_SENDS_PER_IP_PER_HOUR, 429: 50 - settings.OTP_SENDS_PER_IP_PER_HOUR}
    assert set(PhoneCode.objects.values_list("ip", flat=True)) == {"203.0.113.7"}


def test_the_hourly_cap_per_ip_holds_for_parallel_requests_from_every_address_of_one_ipv6_64(settings):
    def one(i):
        host = f"2001:db8:77:1:{random.randint(0, 0xFFFF):x}:{i:x}::{random.randint(1, 0xFFFF):x}"
        return signup(APIClient(), phone_spread(i, 556), REMOTE_ADDR=host)

    results = run_parallel([lambda i=i: one(i) for i in range(50)])
    assert errors(results) == []
    statuses = Counter(r.status_code for r in results)
    print(f"\n50 signups from one /64: {dict(statuses)}")
    assert statuses == {200: settings.OTP_SENDS_PER_IP_PER_HOUR, 429: 50 - settings.OTP_SENDS_PER_IP_PER_HOUR}


def test_the_hourly_cap_per_phone_holds_for_parallel_requests_from_many_addresses(settings):
    settings.OTP_RESEND_COOLDOWN_S = 0  # only the hourly cap stands in the way
    spellings = ["+79991234567", "89991234567", "+7 (999) 123-45-67", "8 999 123 45 67"]

    def one(i):
        return signup(APIClient(), spellings[i % len(spellings)], REMOTE_ADDR=f"198.51.100.{i + 1}")

    results = run_parallel([lambda i=i: one(i) for i in range(50)])
    assert errors(results) == []
    statuses = Counter(r.status_code for r in results)
    cap = settings.OTP_SENDS_PER_PHONE_PER_HOUR
    assert statuses == {200: cap, 429: 50 - cap}
    assert PhoneCode.objects.filter(phone=PHONE).count() == cap


def test_the_cooldown_lets_one_of_fifty_parallel_signups_of_one_phone_from_one_address_through():
    results = run_parallel([lambda: signup(APIClient(), REMOTE_ADDR="198.51.100.1") for _ in range(50)])
    assert errors(results) == []
    assert Counter(r.status_code for r in results) == {200: 1, 429: 49}
    assert PhoneCode.objects.count() == 1


def _same_answer(a, b):
    """Same status, body and headers; only the echo of the caller's own phone may differ."""
    assert a.status_code == b.status_code
    assert {**a.json(), "phone": None} == {**b.json(), "phone": None}
    assert sorted(a.headers) == sorted(b.headers)
    ignore = {"date", "retry-after"}
    assert {k: v for k, v in a.items() if k.lower() not in ignore} == {
        k: v for k, v in b.items() if k.lower() not in ignore
    }


def test_signup_answers_a_registered_and_an_unregistered_phone_alike(settings):
    settings.OTP_FAKE_DELIVERY = False
    User.objects.create_user(phone="+79990000001")
    client = APIClient()
    _same_answer(signup(client, "+79990000001"), signup(client, "+79990000002"))
    # The cooldown answer too.
    _same_answer(signup(client, "+79990000001"), signup(client, "+79990000002"))


def test_a_wrong_code_gets_the_same_answer_for_a_registered_and_an_unregistered_phone():
    User.objects.create_user(phone="+79990000001")
    client = APIClient()
    answers = {}
    for phone in ("+79990000001", "+79990000002"):
        code = signup(client, phone).json()["confirmation_code"]
        answers[phone] = guess(client, all_codes_ending_with(code)[0], phone)
    _same_answer(answers["+79990000001"], answers["+79990000002"])
    # And a phone that never asked for a code.
    _same_answer(guess(client, "1234", "+79990000001"), guess(client, "1234", "+79990000003"))
