"""Referral numbers: /api/v1/my_profile/stats/ (and the profile page), and the staff leaderboard
/api/v1/all_profiles/leaderboard/ (and the admin's user list)."""

import itertools

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from referrals.models import Referral
from referrals.selectors import user_stats
from referrals.services import inviter_set, referral_decide
from tests.factories import UserFactory, phone_far

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

STATS = "/api/v1/my_profile/stats/"
LEADERBOARD = "/api/v1/all_profiles/leaderboard/"


def _client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _users(n):
    return [UserFactory(phone=phone_far()) for _ in range(n)]


def _invite(inviter, *invitees):
    for invitee in invitees:
        inviter_set(user_id=invitee.pk, code=inviter.ref_code)


# --- stats on trees of several shapes ---


def test_a_user_who_invited_nobody_has_zeros():
    (alone,) = _users(1)
    assert user_stats(user_id=alone.pk) == {"direct": 0, "descendants": 0, "depth": 0}


def test_a_star_is_all_direct_and_one_deep():
    root, *leaves = _users(5)
    _invite(root, *leaves)
    assert user_stats(user_id=root.pk) == {"direct": 4, "descendants": 4, "depth": 1}


def test_a_chain_is_one_direct_and_as_deep_as_it_is_long():
    chain = _users(6)
    for upper, lower in itertools.pairwise(chain):
        _invite(upper, lower)
    assert user_stats(user_id=chain[0].pk) == {"direct": 1, "descendants": 5, "depth": 5}
    assert user_stats(user_id=chain[3].pk) == {"direct": 1, "descendants": 2, "depth": 2}
    assert user_stats(user_id=chain[-1].pk) == {"direct": 0, "descendants": 0, "depth": 0}


def test_a_mixed_tree_counts_everyone_below_and_the_longest_branch():
    # root -> a, b, c; a -> a1, a2; a1 -> a1x; c -> c1
    root, a, b, c, a1, a2, a1x, c1 = _users(8)
    _invite(root, a, b, c)
    _invite(a, a1, a2)
    _invite(a1, a1x)
    _invite(c, c1)
    assert user_stats(user_id=root.pk) == {"direct": 3, "descendants": 7, "depth": 3}
    assert user_stats(user_id=a.pk) == {"direct": 2, "descendants": 3, "depth": 2}
    assert user_stats(user_id=b.pk) == {"direct": 0, "descendants": 0, "depth": 0}


def test_the_stats_count_every_link_whatever_its_status(settings):
    root, a, b = _users(3)
    _invite(root, a)
    settings.REFERRAL_MAX_PER_HOUR = 0
    _invite(root, b)
    assert Referral.objects.get(invitee=b).status == Referral.Status.FLAGGED
    assert user_stats(user_id=root.pk) == {"direct": 2, "descendants": 2, "depth": 1}


def test_the_stats_are_one_query_and_end_on_a_cycle_already_in_the_data():
    a, b, c = _users(3)
    Referral.objects.bulk_create(
        [Referral(invitee=b, inviter=a), Referral(invitee=c, inviter=b), Referral(invitee=a, inviter=c)]
    )
    with CaptureQueriesContext(connection) as queries:
        stats = user_stats(user_id=a.pk)
    assert len(queries) == 1
    assert stats == {"direct": 1, "descendants": 2, "depth": 2}


def test_the_stats_api_answers_the_callers_numbers(auth_api, user):
    below = _users(2)
    _invite(user, below[0])
    _invite(below[0], below[1])
    answer = auth_api.get(STATS)
    assert answer.status_code == 200
    assert answer.json() == {"direct": 1, "descendants": 2, "depth": 2}


def test_the_stats_api_needs_a_token_of_an_active_user(api, auth_api, user):
    assert api.get(STATS).status_code == 401
    user.is_active = False
    user.save()
    assert auth_api.get(STATS).status_code == 401


def test_my_profile_keeps_its_fields(auth_api):
    profile = auth_api.get("/api/v1/my_profile/").json()[0]
    assert set(profile) == {"phone", "my_refs", "my_inviter", "my_ref_code", "created_at"}


def test_the_profile_page_shows_the_same_numbers(client, user):
    below = _users(3)
    _invite(user, below[0], below[1])
    _invite(below[0], below[2])
    client.force_login(user)
    page = client.get("/my_profile/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="stats-direct">2<' in html
    assert 'id="stats-descendants">3<' in html
    assert 'id="stats-depth">2<' in html


# --- the leaderboard ---


@pytest.fixture
def viewer_api():
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_user", content_type__app_label="accounts"))
    return _client_for(staff)


def test_the_leaderboard_ranks_users_by_approved_direct_referrals(viewer_api, settings):
    top, second, third = _users(3)
    _invite(top, *_users(3))
    _invite(second, *_users(2))
    _invite(third, *_users(1))
    # Flagged and rejected referrals do not count: `third` gets two more, both held back.
    settings.REFERRAL_MAX_PER_HOUR = 0
    held = _users(2)
    _invite(third, *held)
    reviewer = UserFactory(is_staff=True, is_superuser=True)
    referral_decide(referral_id=held[0].pk, status=Referral.Status.REJECTED, staff=reviewer)
    answer = viewer_api.get(LEADERBOARD)
    assert answer.status_code == 200
    assert answer.json()[:3] == [
        {"id": top.pk, "phone": top.phone, "direct": 3},
        {"id": second.pk, "phone": second.phone, "direct": 2},
        {"id": third.pk, "phone": third.phone, "direct": 1},
    ]
    assert len(answer.json()) == 3  # users with no approved referral are not ranked


def test_an_approval_moves_a_user_up(viewer_api, settings):
    a, b = _users(2)
    _invite(a, *_users(1))
    settings.REFERRAL_MAX_PER_HOUR = 0
    held = _users(2)
    _invite(b, *held)
    reviewer = UserFactory(is_staff=True, is_superuser=True)
    for invitee in held:
        referral_decide(referral_id=invitee.pk, status=Referral.Status.APPROVED, staff=reviewer)
    assert [row["id"] for row in viewer_api.get(LEADERBOARD).json()] == [b.pk, a.pk]


def test_ties_are_ranked_by_id_and_limit_cuts_the_list(viewer_api):
    leaders = _users(4)
    for leader in leaders:
        _invite(leader, *_users(1))
    answer = viewer_api.get(LEADERBOARD, {"limit": 2})
    assert [row["id"] for row in answer.json()] == [leaders[0].pk, leaders[1].pk]


def test_the_leaderboard_defaults_to_10(viewer_api):
    for leader in _users(12):
        _invite(leader, *_users(1))
    assert len(viewer_api.get(LEADERBOARD).json()) == 10


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "101", "1.5"])
def test_a_bad_limit_is_a_400(viewer_api, limit):
    answer = viewer_api.get(LEADERBOARD, {"limit": limit})
    assert answer.status_code == 400
    assert "limit" in answer.json()


def test_the_leaderboard_is_for_staff_who_may_view_users(api, auth_api):
    assert api.get(LEADERBOARD).status_code == 401
    assert auth_api.get(LEADERBOARD).status_code == 403
    assert _client_for(UserFactory(is_staff=True)).get(LEADERBOARD).status_code == 403


def test_the_admin_user_list_shows_approved_referrals_and_sorts_by_them(client, settings):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    top, low = _users(2)
    _invite(top, *_users(2))
    _invite(low, *_users(1))
    settings.REFERRAL_MAX_PER_HOUR = 0
    _invite(low, *_users(2))  # flagged: counted in referrals, not in approved
    page = client.get("/admin/accounts/user/")
    assert page.status_code == 200
    assert "column-approved_referrals" in page.content.decode()
    rows = {row.phone: row for row in page.context["cl"].result_list}
    assert rows[top.phone].approved_referrals_total == 2
    assert rows[low.phone].approved_referrals_total == 1
    assert rows[low.phone].referrals_total == 3
