"""The referral programme's status and fraud signals, computed when the inviter is set."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import PhoneCode
from referrals.models import Referral
from referrals.services import inviter_set, phones_adjacent
from tests.factories import UserFactory, phone_far

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _far_user(**kwargs):
    return UserFactory(phone=phone_far(), **kwargs)


def _code(user, ip, *, age=timedelta(0)):
    code = PhoneCode.objects.create(phone=user.phone, code_hash="x", ip=ip, expires_at=timezone.now())
    PhoneCode.objects.filter(pk=code.pk).update(created_at=timezone.now() - age)


def _link(invitee, inviter) -> Referral:
    inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    return Referral.objects.get(invitee=invitee)


# --- status ---


def test_a_referral_without_signals_is_approved_automatically():
    inviter, invitee = _far_user(), _far_user()
    referral = _link(invitee, inviter)
    assert referral.status == Referral.Status.APPROVED
    assert referral.signals == []
    assert referral.decided_by is None
    assert referral.decided_at == referral.created_at


def test_a_referral_with_a_signal_is_flagged_and_waits_for_a_decision():
    inviter, invitee = _far_user(), _far_user()
    _code(inviter, "198.51.100.7")
    _code(invitee, "198.51.100.7")
    referral = _link(invitee, inviter)
    assert referral.status == Referral.Status.FLAGGED
    assert referral.signals == ["shared_address"]
    assert referral.decided_at is None and referral.decided_by is None


def test_with_review_off_every_referral_is_approved(settings):
    settings.REFERRAL_REVIEW = False
    inviter = UserFactory(phone="+79960000100")
    invitee = UserFactory(phone="+79960000101")
    _code(inviter, "198.51.100.7")
    _code(invitee, "198.51.100.7")
    referral = _link(invitee, inviter)
    assert referral.status == Referral.Status.APPROVED
    assert referral.signals == []


def test_the_signals_are_read_under_the_referrals_lock_in_the_inviter_transaction():
    inviter, invitee = _far_user(), _far_user()
    with CaptureQueriesContext(connection) as queries:
        inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    sql = [q["sql"] for q in queries.captured_queries]
    lock = next(i for i, s in enumerate(sql) if "pg_advisory_xact_lock" in s)
    signals = next(i for i, s in enumerate(sql) if "referrals_signals(" in s)
    insert = next(i for i, s in enumerate(sql) if s.startswith('INSERT INTO "referrals_referral"'))
    release = next(i for i, s in enumerate(sql) if s.startswith("RELEASE SAVEPOINT") or s == "COMMIT")
    assert lock < signals < insert < release


# --- shared_address ---


def test_shared_address_fires_on_the_same_ipv4_address():
    inviter, invitee = _far_user(), _far_user()
    _code(inviter, "203.0.113.5", age=timedelta(days=10))
    _code(invitee, "203.0.113.5")
    assert _link(invitee, inviter).signals == ["shared_address"]


def test_shared_address_does_not_fire_on_neighbouring_ipv4_addresses():
    inviter, invitee = _far_user(), _far_user()
    _code(inviter, "203.0.113.5")
    _code(invitee, "203.0.113.6")
    assert _link(invitee, inviter).signals == []


def test_shared_address_fires_on_the_same_ipv6_64_network():
    inviter, invitee = _far_user(), _far_user()
    _code(inviter, "2001:db8:aa:bb::1")
    _code(invitee, "2001:db8:aa:bb:ffff:1:2:3")
    assert _link(invitee, inviter).signals == ["shared_address"]


def test_shared_address_does_not_fire_on_another_ipv6_64_network():
    inviter, invitee = _far_user(), _far_user()
    _code(inviter, "2001:db8:aa:bb::1")
    _code(invitee, "2001:db8:aa:bc::1")
    assert _link(invitee, inviter).signals == []


def test_shared_address_counts_only_codes_within_the_window(settings):
    settings.REFERRAL_SIGNAL_WINDOW_DAYS = 30
    inviter, invitee = _far_user(), _far_user()
    _code(inviter, "203.0.113.9", age=timedelta(days=31))
    _code(invitee, "203.0.113.9")
    assert _link(invitee, inviter).signals == []


def test_shared_address_ignores_codes_without_an_address():
    inviter, invitee = _far_user(), _far_user()
    _code(inviter, None)
    _code(invitee, None)
    assert _link(invitee, inviter).signals == []


# --- adjacent_phone ---


@pytest.mark.parametrize(
    ("a", "b", "adjacent"),
    [
        ("+79990000100", "+79990000110", True),  # 10 apart
        ("+79990000195", "+79990000203", True),  # 8 apart, across a hundred
        ("+79990000100", "+79990000199", True),  # all but the last 2 digits shared
        ("+79990000100", "+79990000211", False),
        ("+79990000189", "+79990000200", False),  # 11 apart, other hundreds
        ("+79990000100", "+7999000010", False),  # not the same length, far apart
    ],
)
def test_adjacent_phones_are_at_most_10_apart_or_share_all_but_the_last_2_digits(a, b, adjacent):
    assert phones_adjacent(a, b) is adjacent
    assert phones_adjacent(b, a) is adjacent


def test_adjacent_phone_flags_the_referral():
    inviter = UserFactory(phone="+79960000500")
    invitee = UserFactory(phone="+79960000577")
    referral = _link(invitee, inviter)
    assert referral.status == Referral.Status.FLAGGED
    assert referral.signals == ["adjacent_phone"]


# --- inviter_velocity ---


def test_inviter_velocity_fires_above_the_hourly_cap_counting_this_referral(settings):
    settings.REFERRAL_MAX_PER_HOUR = 2
    inviter = _far_user()
    first, second, third = (_link(_far_user(), inviter) for _ in range(3))
    assert [first.signals, second.signals] == [[], []]
    assert third.signals == ["inviter_velocity"]
    assert third.status == Referral.Status.FLAGGED


def test_inviter_velocity_forgets_referrals_older_than_an_hour(settings):
    settings.REFERRAL_MAX_PER_HOUR = 1
    inviter = _far_user()
    old = _link(_far_user(), inviter)
    Referral.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    assert _link(_far_user(), inviter).signals == []


def test_all_signals_together_are_stored_in_a_fixed_order(settings):
    settings.REFERRAL_MAX_PER_HOUR = 0
    inviter = UserFactory(phone="+79960000700")
    invitee = UserFactory(phone="+79960000701")
    _code(inviter, "192.0.2.1")
    _code(invitee, "192.0.2.1")
    assert _link(invitee, inviter).signals == ["shared_address", "adjacent_phone", "inviter_velocity"]


def test_a_staff_replacement_of_the_inviter_is_judged_again():
    first, second, invitee = _far_user(), _far_user(), _far_user()
    _code(second, "192.0.2.77")
    _code(invitee, "192.0.2.77")
    assert _link(invitee, first).status == Referral.Status.APPROVED
    inviter_set(user_id=invitee.pk, code=second.ref_code, replace=True)
    referral = Referral.objects.get(invitee=invitee)
    assert referral.inviter_id == second.pk and referral.status == Referral.Status.FLAGGED


def test_the_database_refuses_a_flagged_referral_with_a_decision_time():
    from django.db import IntegrityError, transaction

    inviter, invitee = _far_user(), _far_user()
    with pytest.raises(IntegrityError), transaction.atomic():
        Referral.objects.create(
            invitee=invitee, inviter=inviter, status=Referral.Status.FLAGGED, decided_at=timezone.now()
        )
