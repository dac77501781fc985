"""Races on PostgreSQL: real threads, each with its own connection, on committed data.

referrals/tests/test_concurrency.py has the targeted races (20 PATCHes at once, mutual
invites); this file has the randomized soak and the login races.
"""

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import PhoneCode, User
from accounts.services import user_get_or_create
from referrals.models import Referral
from tests.factories import UserFactory

from .parallel import errors, run_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SOAK_THREADS = 50
SOAK_USERS = 100
SOAK_SECONDS = 4.0
SOAK_MIN_REQUESTS_PER_THREAD = 10  # on a busy machine "a few seconds" may be few requests
RULE_MESSAGES = {
    "You have already entered an inviter's code.",
    "You cannot enter your own referral code.",
    "This code belongs to someone you invited (directly or through others).",
}


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _links() -> dict[int, list[int]]:
    """invitee -> inviters, read in ONE statement (one consistent snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT invitee_id, inviter_id FROM {Referral._meta.db_table}")
        rows = cursor.fetchall()
    links: dict[int, list[int]] = {}
    for invitee, inviter in rows:
        links.setdefault(invitee, []).append(inviter)
    return links


def _problems(links: dict[int, list[int]]) -> list[str]:
    """Users with two inviters, self-invites and cycles in one snapshot of the links."""
    found = [f"user {u} has inviters {i}" for u, i in links.items() if len(i) > 1]
    found += [f"user {u} invited themself" for u, i in links.items() if u in i]
    for start in links:
        seen, node = {start}, links[start][0]
        while node in links:
            if node in seen:
                found.append(f"cycle through user {start}")
                break
            seen.add(node)
            node = links[node][0]
    return found


@pytest.mark.slow
def test_fifty_threads_setting_random_inviters_never_leave_a_cycle_or_two_inviters():
    users = [UserFactory() for _ in range(SOAK_USERS)]
    codes = [u.ref_code for u in users]
    clients = {u.pk: _client(u) for u in users}
    staff = _client(UserFactory(is_staff=True, is_superuser=True))  # every model permission
    outcomes: Counter = Counter()
    snapshot_problems: list[str] = []
    snapshots = 0
    lock = threading.Lock()
    started = time.monotonic()
    stop = started + SOAK_SECONDS

    def soak(seed):
        rng = random.Random(seed)
        done = 0
        while time.monotonic() < stop or done < SOAK_MIN_REQUESTS_PER_THREAD:
            done += 1
            user = rng.choice(users)
            roll = rng.random()
            if roll < 0.75:  # the user's own one-time choice; codes in upper case sometimes
                code = rng.choice(codes)
                answer = clients[user.pk].patch(
                    "/api/v1/my_profile/", {"my_inviter": code.upper() if rng.random() < 0.2 else code}, format="json"
                )
                key = "user"
            elif roll < 0.95:  # staff replace the inviter, which keeps the graph changing
                answer = staff.patch(f"/api/v1/all_profiles/{user.pk}/", {"my_inviter": rng.choice(codes)}, "json")
                key = "staff replace"
            else:
                answer = staff.patch(f"/api/v1/all_profiles/{user.pk}/", {"my_inviter": None}, format="json")
                key = "staff clear"
            if answer.status_code == 200:
                outcome = "200"
            else:
                assert answer.status_code == 400, answer.content
                message = answer.json()["my_inviter"][0]
                assert message in RULE_MESSAGES, message
                outcome = "400 " + message[:30]
            with lock:
                outcomes[(key, outcome)] += 1

    def watch():
        nonlocal snapshots
        while sum(outcomes.values()) < SOAK_THREADS * SOAK_MIN_REQUESTS_PER_THREAD or time.monotonic() < stop:
            snapshot_problems.extend(_problems(_links()))
            snapshots += 1
            time.sleep(0.05)

    results = run_parallel([lambda s=s: soak(s) for s in range(SOAK_THREADS)] + [watch])
    assert errors(results) == []
    final = _links()
    total = sum(outcomes.values())
    elapsed = time.monotonic() - started
    print(f"\nsoak: {total} requests in {elapsed:.1f} s by {SOAK_THREADS} threads, {snapshots} snapshots checked")
    for (who, outcome), n in sorted(outcomes.items()):
        print(f"  {who:14} {outcome:36} {n}")
    print(f"  links at the end: {len(final)}")
    assert snapshot_problems == []
    assert _problems(final) == []
    assert total >= SOAK_THREADS * SOAK_MIN_REQUESTS_PER_THREAD
    assert sum(n for (_, outcome), n in outcomes.items() if outcome == "200") > 0
    assert any(outcome.startswith("400 This code belongs") for _, outcome in outcomes)


@pytest.mark.parametrize("registered", [False, True], ids=["first_login", "returning_user"])
def test_fifty_parallel_logins_with_one_valid_code_give_exactly_one_token(settings, registered):
    """A first login is one transaction; a returning user's is a read and then one statement
    outside a transaction (accounts.services._login_in_one_statement). The code works once."""
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    settings.OTP_FAKE_DELIVERY = True
    if registered:
        User.objects.create_user(phone="+79991234567")
    code = APIClient().post("/api/v1/auth/signup/", {"phone": "+79991234567"}, format="json").json()
    body = {"phone": "+79991234567", "confirmation_code": code["confirmation_code"]}
    results = run_parallel([lambda: APIClient().post("/api/v1/auth/token/", body, format="json")] * 50)
    assert errors(results) == []
    statuses = Counter(r.status_code for r in results)
    print(f"\n50 parallel logins with one code: {dict(statuses)}")
    assert statuses == {200: 1, 400: 49}
    assert User.objects.count() == 1
    assert PhoneCode.objects.get().consumed_at is not None
    assert OutstandingToken.objects.count() == 1


def test_fifty_parallel_first_logins_of_one_phone_create_one_user():
    results = run_parallel([lambda: user_get_or_create(phone="+79991234567")] * 50)
    assert errors(results) == []
    assert len({user.pk for user in results}) == 1
    assert User.objects.filter(phone="+79991234567").count() == 1


def test_parallel_signups_of_one_phone_in_several_spellings_end_in_one_user(settings):
    settings.OTP_FAKE_DELIVERY = True
    settings.OTP_RESEND_COOLDOWN_S = 0
    settings.OTP_SENDS_PER_PHONE_PER_HOUR = 100
    settings.OTP_SENDS_PER_PREFIX_PER_HOUR = 100  # one phone's codes are its prefix's too
    spellings = ["+79991234567", "89991234567", "+7 (999) 123-45-67", "8 999 123 45 67"]

    def sign_up_and_log_in(i):
        client = APIClient()
        phone = spellings[i % len(spellings)]
        answer = client.post("/api/v1/auth/signup/", {"phone": phone}, format="json", REMOTE_ADDR=f"10.0.0.{i}")
        code = answer.json()["confirmation_code"]
        return client.post("/api/v1/auth/token/", {"phone": phone, "confirmation_code": code}, format="json")

    results = run_parallel([lambda i=i: sign_up_and_log_in(i) for i in range(20)])
    assert errors(results) == []
    # Only the latest code counts, so most logins lose; whoever wins, there is one user.
    assert Counter(r.status_code for r in results)[200] >= 1
    assert User.objects.count() == 1
    assert User.objects.get().phone == "+79991234567"
