"""The review queue: flagged referrals wait for staff with referrals.change_referral, in the API
(/api/v1/referrals/) and the Django admin alike, through one service."""

import pytest
from django.contrib.auth.models import Permission
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from referrals.models import Referral
from referrals.services import inviter_set, referral_decide
from tests.factories import UserFactory, phone_far

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

LIST = "/api/v1/referrals/"
ADMIN_LIST = "/admin/referrals/referral/"


def _client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _reviewer(**kwargs):
    user = UserFactory(is_staff=True, **kwargs)
    user.user_permissions.add(Permission.objects.get(codename="change_referral", content_type__app_label="referrals"))
    return user


@pytest.fixture
def reviewer_api():
    reviewer = _reviewer()
    client = _client_for(reviewer)
    client.user = reviewer
    return client


def _flagged(settings) -> Referral:
    """A referral flagged by inviter_velocity (the cap set to 0)."""
    settings.REFERRAL_MAX_PER_HOUR = 0
    inviter, invitee = UserFactory(phone=phone_far()), UserFactory(phone=phone_far())
    inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    settings.REFERRAL_MAX_PER_HOUR = 10
    return Referral.objects.get(invitee=invitee)


def _approved() -> Referral:
    inviter, invitee = UserFactory(phone=phone_far()), UserFactory(phone=phone_far())
    inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    return Referral.objects.get(invitee=invitee)


# --- the list ---


def test_the_queue_lists_flagged_referrals_with_their_signals(reviewer_api, settings):
    flagged = _flagged(settings)
    _approved()
    answer = reviewer_api.get(LIST, {"status": "flagged"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    (row,) = body["results"]
    assert row == {
        "id": flagged.pk,
        "inviter": flagged.inviter.phone,
        "invitee": flagged.invitee.phone,
        "created_at": row["created_at"],
        "status": "flagged",
        "signals": ["inviter_velocity"],
        "decided_by": None,
        "decided_at": None,
    }
    assert parse_datetime(row["created_at"]) == flagged.created_at


def test_without_a_status_the_list_has_every_referral_and_pages_like_all_profiles(reviewer_api, settings):
    for _ in range(3):
        _approved()
    _flagged(settings)
    answer = reviewer_api.get(LIST, {"page_size": 2})
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 4 and len(body["results"]) == 2 and "page=2" in body["next"]
    assert reviewer_api.get(LIST, {"page": 2, "page_size": 2}).json()["previous"] is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "pending"}, "status"), ({"page_size": "0"}, "page_size"), ({"page_size": "x"}, "page_size")],
)
def test_bad_list_parameters_are_a_400_naming_the_parameter(reviewer_api, params, field):
    answer = reviewer_api.get(LIST, params)
    assert answer.status_code == 400
    assert field in answer.json()


def test_a_page_past_the_end_is_a_404(reviewer_api):
    assert reviewer_api.get(LIST, {"page": 5}).status_code == 404


# --- the decisions ---


def test_approving_a_flagged_referral_records_who_and_when(reviewer_api, settings):
    flagged = _flagged(settings)
    answer = reviewer_api.post(f"{LIST}{flagged.pk}/approve/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "approved" and body["decided_by"] == reviewer_api.user.phone
    flagged.refresh_from_db()
    assert flagged.status == Referral.Status.APPROVED
    assert flagged.decided_by == reviewer_api.user
    assert parse_datetime(body["decided_at"]) == flagged.decided_at
    assert flagged.signals == ["inviter_velocity"]  # the evidence stays


def test_rejecting_a_flagged_referral_keeps_the_inviter_link(reviewer_api, settings):
    flagged = _flagged(settings)
    answer = reviewer_api.post(f"{LIST}{flagged.pk}/reject/")
    assert answer.status_code == 200 and answer.json()["status"] == "rejected"
    flagged.refresh_from_db()
    assert flagged.status == Referral.Status.REJECTED
    profile = _client_for(flagged.invitee).get("/api/v1/my_profile/").json()[0]
    assert profile["my_inviter"] == flagged.inviter.phone


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_only_a_flagged_referral_can_be_decided_otherwise_409(reviewer_api, settings, action):
    approved = _approved()
    answer = reviewer_api.post(f"{LIST}{approved.pk}/{action}/")
    assert answer.status_code == 409
    assert "flagged" in answer.json()["detail"]
    flagged = _flagged(settings)
    assert reviewer_api.post(f"{LIST}{flagged.pk}/reject/").status_code == 200
    assert reviewer_api.post(f"{LIST}{flagged.pk}/{action}/").status_code == 409


def test_deciding_an_unknown_referral_is_a_404(reviewer_api):
    assert reviewer_api.post(f"{LIST}999999/approve/").status_code == 404


def test_a_decision_is_made_once_even_when_two_reviewers_race(settings):
    flagged = _flagged(settings)
    first, second = _reviewer(), _reviewer()
    referral_decide(referral_id=flagged.pk, status=Referral.Status.APPROVED, staff=first)
    from project.exceptions import ConflictError

    with pytest.raises(ConflictError):
        referral_decide(referral_id=flagged.pk, status=Referral.Status.REJECTED, staff=second)
    flagged.refresh_from_db()
    assert flagged.decided_by == first and flagged.status == Referral.Status.APPROVED


# --- who may ---


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", LIST), ("post", f"{LIST}1/approve/"), ("post", f"{LIST}1/reject/")],
)
def test_staff_without_the_change_referral_permission_get_403(method, path):
    staff = UserFactory(is_staff=True)
    assert getattr(_client_for(staff), method)(path).status_code == 403


@pytest.mark.parametrize("method,path", [("get", LIST), ("post", f"{LIST}1/approve/")])
def test_a_user_with_the_permission_but_not_staff_gets_403(method, path):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="change_referral"))
    assert getattr(_client_for(user), method)(path).status_code == 403


def test_anonymous_callers_get_401(api):
    assert api.get(LIST).status_code == 401
    assert api.post(f"{LIST}1/approve/").status_code == 401


def test_a_superuser_may_review(settings):
    flagged = _flagged(settings)
    boss = UserFactory(is_staff=True, is_superuser=True)
    assert _client_for(boss).post(f"{LIST}{flagged.pk}/approve/").status_code == 200


# --- the Django admin ---


@pytest.fixture
def admin_reviewer(client):
    reviewer = _reviewer()
    client.force_login(reviewer)
    client.user = reviewer
    return client


def test_the_admin_lists_referrals_filtered_by_status(admin_reviewer, settings):
    flagged = _flagged(settings)
    approved = _approved()
    page = admin_reviewer.get(ADMIN_LIST, {"status__exact": "flagged"})
    assert page.status_code == 200
    shown = [row.pk for row in page.context["cl"].result_list]
    assert shown == [flagged.pk]
    assert approved.invitee.phone not in page.content.decode()
    assert "inviter_velocity" in page.content.decode()


@pytest.mark.parametrize(("action", "status"), [("approve_selected", "approved"), ("reject_selected", "rejected")])
def test_the_admin_bulk_actions_decide_the_flagged_ones_and_skip_the_rest(admin_reviewer, settings, action, status):
    flagged = [_flagged(settings) for _ in range(2)]
    approved = _approved()
    answer = admin_reviewer.post(
        ADMIN_LIST,
        {"action": action, "_selected_action": [r.pk for r in [*flagged, approved]]},
        follow=True,
    )
    assert answer.status_code == 200
    for referral in flagged:
        referral.refresh_from_db()
        assert referral.status == status and referral.decided_by == admin_reviewer.user
    approved.refresh_from_db()
    assert approved.status == "approved" and approved.decided_by is None
    text = answer.content.decode()
    assert "2 referral(s)" in text and "1 skipped" in text


def test_staff_without_the_permission_cannot_open_the_admin_queue(client, settings):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(ADMIN_LIST).status_code == 403
