"""The referral code and the inviter rules, at the service layer (every door calls these)."""

import itertools
import secrets
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.ref_codes import REF_CODE_ALPHABET, REF_CODE_LENGTH, ref_code_generate
from project.exceptions import ApplicationError
from referrals import services
from referrals.models import Referral
from referrals.selectors import profile_get
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _chain(n):
    """n users where users[i] invited users[i + 1]: users[0] is the root."""
    users = [UserFactory() for _ in range(n)]
    for inviter, invitee in itertools.pairwise(users):
        services.inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    return users


def _refused(user, code, *, replace=False) -> str:
    with pytest.raises(ApplicationError) as info:
        services.inviter_set(user_id=user.pk, code=code, replace=replace)
    assert info.value.field == "my_inviter"
    return info.value.message


# --- the referral code ---


def test_every_new_user_has_a_six_character_lower_case_code_from_the_unambiguous_alphabet():
    users = [UserFactory() for _ in range(50)]
    for user in users:
        assert len(user.ref_code) == REF_CODE_LENGTH
        assert set(user.ref_code) <= set(REF_CODE_ALPHABET)
    assert len({u.ref_code for u in users}) == 50


def test_the_alphabet_has_no_look_alike_characters_and_no_upper_case():
    assert not set("il1o0") & set(REF_CODE_ALPHABET)
    assert REF_CODE_ALPHABET.islower()
    assert len(set(REF_CODE_ALPHABET)) == len(REF_CODE_ALPHABET)


def test_codes_are_drawn_with_secrets():
    with mock.patch("accounts.ref_codes.secrets.choice", return_value="k") as choice:
        assert ref_code_generate() == "kkkkkk"
    assert choice.call_count == REF_CODE_LENGTH


def test_a_user_created_any_way_has_a_code_from_the_start():
    user = User.objects.create(phone="+79990000001")
    user.refresh_from_db()
    assert len(user.ref_code) == REF_CODE_LENGTH


def test_the_database_refuses_a_duplicate_code():
    taken = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(phone="+79990000002", ref_code=taken.ref_code)


def test_the_database_refuses_an_upper_case_code():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(phone="+79990000003", ref_code="ABCDEF")


def test_a_colliding_code_is_drawn_again():
    taken = UserFactory().ref_code
    fresh = "zzzzzz" if taken != "zzzzzz" else "yyyyyy"
    # Codes are drawn with secrets.choice: first the taken code, then a fresh one.
    with mock.patch("accounts.ref_codes.secrets", **{"choice.side_effect": [*taken, *fresh]}) as secrets:
        user = User.objects.create_user(phone="+79990000004")
    assert secrets.choice.call_count == 2 * REF_CODE_LENGTH
    user.refresh_from_db()
    assert user.ref_code == fresh
    assert User.objects.filter(phone="+79990000004").count() == 1


def test_an_existing_phone_is_not_retried_as_a_code_collision():
    UserFactory(phone="+79990000005")
    with (
        mock.patch("accounts.ref_codes.secrets", wraps=secrets) as patched,
        pytest.raises(IntegrityError),
    ):
        User.objects.create_user(phone="+79990000005")
    assert patched.choice.call_count == REF_CODE_LENGTH


# --- setting the inviter ---


def test_it_links_the_user_to_the_owner_of_the_code():
    inviter, invitee = UserFactory(), UserFactory()
    assert services.inviter_set(user_id=invitee.pk, code=inviter.ref_code) == inviter
    assert Referral.objects.get(invitee=invitee).inviter == inviter


@pytest.mark.parametrize("spelling", [str.upper, str.title, lambda c: f"  {c.upper()} "])
def test_it_matches_the_code_case_insensitively(spelling):
    inviter, invitee = UserFactory(), UserFactory()
    services.inviter_set(user_id=invitee.pk, code=spelling(inviter.ref_code))
    assert Referral.objects.get(invitee=invitee).inviter == inviter


def test_it_accepts_an_upper_case_code_like_abc234():
    inviter = UserFactory()
    User.objects.filter(pk=inviter.pk).update(ref_code="abc234")
    invitee = UserFactory()
    services.inviter_set(user_id=invitee.pk, code="ABC234")
    assert Referral.objects.get(invitee=invitee).inviter_id == inviter.pk


def test_it_rejects_own_code():
    user = UserFactory()
    assert "own" in _refused(user, user.ref_code)
    assert not Referral.objects.exists()


def test_it_rejects_a_code_nobody_has():
    user = UserFactory()
    assert "No user has this referral code" in _refused(user, "zzzzzz" if user.ref_code != "zzzzzz" else "yyyyyy")


@pytest.mark.parametrize(
    "code", [None, "", "   ", 5, 123456, ["abcdef"], {"a": 1}, "abc", "abcdefg", "ab!d#f", "0o1lI9"]
)
def test_it_rejects_input_that_cannot_be_a_code(code):
    user = UserFactory()
    _refused(user, code)
    assert not Referral.objects.exists()


def test_it_sets_the_inviter_only_once():
    first, second, user = UserFactory(), UserFactory(), UserFactory()
    services.inviter_set(user_id=user.pk, code=first.ref_code)
    assert "already" in _refused(user, second.ref_code)
    assert Referral.objects.get(invitee=user).inviter == first


def test_it_rejects_the_direct_invitee_as_inviter():
    a, b = _chain(2)
    assert "invited" in _refused(a, b.ref_code)


def test_it_rejects_a_three_cycle():
    a, _b, c = _chain(3)
    assert "invited" in _refused(a, c.ref_code)
    assert not Referral.objects.filter(invitee=a).exists()


def test_it_rejects_a_five_cycle():
    users = _chain(5)
    assert "invited" in _refused(users[0], users[-1].ref_code)
    # Every member of the chain is below the root, so none of them may invite it.
    for lower in users[1:]:
        _refused(users[0], lower.ref_code)


def test_it_accepts_a_long_chain_that_closes_no_cycle():
    users = _chain(5)
    outsider = UserFactory()
    services.inviter_set(user_id=outsider.pk, code=users[-1].ref_code)
    services.inviter_set(user_id=users[0].pk, code=UserFactory().ref_code)
    assert Referral.objects.count() == 6


def test_the_cycle_check_is_one_query_whatever_the_chain_length():
    users = _chain(30)
    with CaptureQueriesContext(connection) as queries:
        assert services.would_close_cycle(user_id=users[0].pk, inviter_id=users[-1].pk)
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("SELECT referrals_cycle(")
    with connection.cursor() as cursor:  # the function is the recursive query
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'referrals_cycle'")
        assert "WITH RECURSIVE" in cursor.fetchone()[0]


def test_the_cycle_check_terminates_on_a_cycle_already_in_the_data():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    # A cycle written behind the services' back (only the self-link has a DB constraint).
    Referral.objects.bulk_create([Referral(invitee=a, inviter=b), Referral(invitee=b, inviter=a)])
    assert not services.would_close_cycle(user_id=c.pk, inviter_id=a.pk)
    assert services.would_close_cycle(user_id=a.pk, inviter_id=b.pk)


def test_the_database_refuses_a_self_link():
    user = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Referral.objects.create(invitee=user, inviter=user)


def test_inviter_set_takes_the_referrals_advisory_lock():
    inviter, user = UserFactory(), UserFactory()
    with CaptureQueriesContext(connection) as queries:
        services.inviter_set(user_id=user.pk, code=inviter.ref_code)
    sqls = [q["sql"] for q in queries]
    lock = next(i for i, sql in enumerate(sqls) if "pg_advisory_xact_lock" in sql)
    insert = next(i for i, sql in enumerate(sqls) if sql.startswith("INSERT"))
    assert lock < insert


# --- staff: replace, clear, delete ---


def test_staff_may_replace_the_inviter_under_the_same_rules():
    first, second, user = UserFactory(), UserFactory(), UserFactory()
    services.inviter_set(user_id=user.pk, code=first.ref_code)
    services.inviter_set(user_id=user.pk, code=second.ref_code, replace=True)
    assert Referral.objects.get(invitee=user).inviter == second
    assert "own" in _refused(user, user.ref_code, replace=True)
    below = UserFactory()
    services.inviter_set(user_id=below.pk, code=user.ref_code)
    assert "invited" in _refused(user, below.ref_code, replace=True)
    assert Referral.objects.get(invitee=user).inviter == second


def _superuser():
    return UserFactory(is_staff=True, is_superuser=True)


def test_profile_update_with_none_clears_the_inviter():
    inviter, user = UserFactory(), UserFactory()
    services.inviter_set(user_id=user.pk, code=inviter.ref_code)
    services.profile_update(actor=_superuser(), user_id=user.pk, my_inviter=None)
    assert not Referral.objects.filter(invitee=user).exists()


def test_profile_update_without_my_inviter_leaves_it_alone():
    inviter, user = UserFactory(), UserFactory()
    services.inviter_set(user_id=user.pk, code=inviter.ref_code)
    services.profile_update(actor=_superuser(), user_id=user.pk, is_active=False)
    assert Referral.objects.get(invitee=user).inviter == inviter


def test_profile_update_is_all_or_nothing():
    user = UserFactory()
    with pytest.raises(ApplicationError):
        services.profile_update(actor=_superuser(), user_id=user.pk, phone="+79990000009", my_inviter=user.ref_code)
    user.refresh_from_db()
    assert user.phone != "+79990000009"


def test_deleting_an_inviter_keeps_the_people_they_invited():
    a, b, c = _chain(3)
    services.user_delete(actor=_superuser(), user_id=a.pk)
    assert User.objects.filter(pk__in=[b.pk, c.pk]).count() == 2
    assert not Referral.objects.filter(invitee=b).exists()
    assert Referral.objects.get(invitee=c).inviter == b
    # b has no inviter any more and may enter a code again.
    services.inviter_set(user_id=b.pk, code=UserFactory().ref_code)


def test_deleting_an_invitee_keeps_the_inviter():
    a, b = _chain(2)
    services.user_delete(actor=_superuser(), user_id=b.pk)
    assert User.objects.filter(pk=a.pk).exists()
    assert profile_get(user_id=a.pk)["my_refs"] == []


def test_profile_get_gives_the_row_the_orm_profile_query_gives():
    """profile_get's constant statement and profiles_base() (the lists' ORM query) agree: the
    inviter, the invitees oldest first, the dates, and the active-only rule."""
    from referrals.selectors import _profile, profiles_base

    inviter, user = UserFactory(), UserFactory()
    services.inviter_set(user_id=user.pk, code=inviter.ref_code)
    invitees = [UserFactory() for _ in range(3)]
    for invitee in invitees:
        services.inviter_set(user_id=invitee.pk, code=user.ref_code)
    row = profiles_base().get(pk=user.pk)
    assert profile_get(user_id=user.pk) == _profile(row, row["refs"])
    assert profile_get(user_id=user.pk)["my_refs"] == [{"phone": str(i.phone)} for i in invitees]
    assert profile_get(user_id=user.pk)["my_inviter"] == str(inviter.phone)
    assert profile_get(user_id=user.pk)["created_at"].utcoffset().total_seconds() == 0

    User.objects.filter(pk=user.pk).update(is_active=False)
    assert profile_get(user_id=user.pk) is None
    assert profile_get(user_id=user.pk, active_only=False)["is_active"] is False
    assert profile_get(user_id=10**9) is None
