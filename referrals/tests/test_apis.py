"""GET/PATCH /api/v1/my_profile/ and the staff API /api/v1/all_profiles/."""

import itertools

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from referrals.models import Referral
from referrals.services import inviter_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MY_PROFILE = "/api/v1/my_profile/"
ALL_PROFILES = "/api/v1/all_profiles/"


def _detail(user):
    return f"{ALL_PROFILES}{user.pk}/"


def _client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _invite(inviter, *invitees):
    for invitee in invitees:
        inviter_set(user_id=invitee.pk, code=inviter.ref_code)


# --- GET my_profile ---


def test_my_profile_answers_the_v1_shape(auth_api, user):
    answer = auth_api.get(MY_PROFILE)
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body, list) and len(body) == 1
    profile = body[0]
    assert set(profile) == {"phone", "my_refs", "my_inviter", "my_ref_code", "created_at"}
    assert profile["phone"] == user.phone
    assert profile["my_refs"] == []
    assert profile["my_inviter"] is None
    assert profile["my_ref_code"] == user.ref_code
    assert parse_datetime(profile["created_at"]) == user.created_at


def test_my_profile_shows_the_inviter_phone_and_the_referrals_oldest_first(auth_api, user):
    inviter = UserFactory()
    _invite(inviter, user)
    late, early, middle = UserFactory(), UserFactory(), UserFactory()
    _invite(user, early, middle, late)  # the order in which they entered the code counts
    profile = auth_api.get(MY_PROFILE).json()[0]
    assert profile["my_inviter"] == inviter.phone
    assert profile["my_refs"] == [{"phone": early.phone}, {"phone": middle.phone}, {"phone": late.phone}]


def test_my_profile_needs_a_token(api):
    answer = api.get(MY_PROFILE)
    assert answer.status_code == 401
    assert "detail" in answer.json()
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_my_profile_refuses_a_forged_token(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert api.get(MY_PROFILE).status_code == 401


def test_my_profile_refuses_a_token_of_a_deleted_user(auth_api, user):
    user.delete()
    assert auth_api.get(MY_PROFILE).status_code == 401
    assert auth_api.patch(MY_PROFILE, {"my_inviter": UserFactory().ref_code}, format="json").status_code == 401


def test_my_profile_refuses_a_token_of_a_disabled_user(auth_api, user):
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert auth_api.get(MY_PROFILE).status_code == 401
    assert auth_api.patch(MY_PROFILE, {"my_inviter": UserFactory().ref_code}, format="json").status_code == 401
    assert not Referral.objects.exists()


def test_get_my_profile_takes_the_same_number_of_queries_for_0_and_500_referrals(
    auth_api, user, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2):
        assert auth_api.get(MY_PROFILE).json()[0]["my_refs"] == []
    invitees = [UserFactory() for _ in range(500)]
    Referral.objects.bulk_create([Referral(invitee=i, inviter=user) for i in invitees])
    with django_assert_max_num_queries(2):
        profile = auth_api.get(MY_PROFILE).json()[0]
    assert len(profile["my_refs"]) == 500


# --- PATCH my_profile ---


def test_patch_my_profile_sets_the_inviter_and_answers_the_profile(auth_api, user):
    inviter = UserFactory()
    answer = auth_api.patch(MY_PROFILE, {"my_inviter": inviter.ref_code}, format="json")
    assert answer.status_code == 200
    body = answer.json()
    assert len(body) == 1
    assert body[0]["my_inviter"] == inviter.phone
    assert body[0]["phone"] == user.phone
    assert auth_api.get(MY_PROFILE).json()[0]["my_inviter"] == inviter.phone
    assert _client_for(inviter).get(MY_PROFILE).json()[0]["my_refs"] == [{"phone": user.phone}]


def test_patch_my_profile_matches_the_code_case_insensitively(auth_api):
    inviter = UserFactory()
    User.objects.filter(pk=inviter.pk).update(ref_code="abc234")
    answer = auth_api.patch(MY_PROFILE, {"my_inviter": "ABC234"}, format="json")
    assert answer.status_code == 200
    assert answer.json()[0]["my_inviter"] == inviter.phone


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"my_inviter": None},
        {"my_inviter": ""},
        {"my_inviter": "   "},
        {"my_inviter": 5},
        {"my_inviter": 123456},
        {"my_inviter": 1.5},
        {"my_inviter": True},
        {"my_inviter": ["abcdef"]},
        {"my_inviter": {"code": "abcdef"}},
        {"my_inviter": "garbage!"},
        {"my_inviter": "x" * 10_000},
        {"my_inviter": "ab\x00cde"},
        {"phone": "+79990000000"},
    ],
    ids=repr,
)
def test_patch_my_profile_without_a_usable_my_inviter_is_a_400(auth_api, body):
    answer = auth_api.patch(MY_PROFILE, body, format="json")
    assert answer.status_code == 400
    errors = answer.json()["my_inviter"]
    assert isinstance(errors, list) and errors and all(isinstance(e, str) and e for e in errors)
    assert not Referral.objects.exists()


def test_patch_my_profile_explains_that_a_number_is_not_a_code(auth_api):
    answer = auth_api.patch(MY_PROFILE, {"my_inviter": 5}, format="json")
    assert answer.status_code == 400
    assert "string" in answer.json()["my_inviter"][0]


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"abcdef"', "null", "{"])
def test_patch_my_profile_with_a_body_that_is_not_an_object_is_a_400(auth_api, raw):
    answer = auth_api.generic("PATCH", MY_PROFILE, raw, content_type="application/json")
    assert answer.status_code == 400
    assert not Referral.objects.exists()


def test_patch_my_profile_rejects_own_code(auth_api, user):
    answer = auth_api.patch(MY_PROFILE, {"my_inviter": user.ref_code}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"my_inviter": ["You cannot enter your own referral code."]}


def test_patch_my_profile_rejects_a_code_nobody_has(auth_api):
    answer = auth_api.patch(MY_PROFILE, {"my_inviter": "zzzzzz"}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"my_inviter": ["No user has this referral code."]}


def test_patch_my_profile_sets_the_inviter_only_once(auth_api):
    first, second = UserFactory(), UserFactory()
    assert auth_api.patch(MY_PROFILE, {"my_inviter": first.ref_code}, format="json").status_code == 200
    answer = auth_api.patch(MY_PROFILE, {"my_inviter": second.ref_code}, format="json")
    assert answer.status_code == 400
    assert "already" in answer.json()["my_inviter"][0]
    assert auth_api.get(MY_PROFILE).json()[0]["my_inviter"] == first.phone


@pytest.mark.parametrize("length", [2, 3, 5])
def test_patch_my_profile_rejects_a_cycle_of_any_length(length):
    users = [UserFactory() for _ in range(length)]
    for inviter, invitee in itertools.pairwise(users):
        assert (
            _client_for(invitee).patch(MY_PROFILE, {"my_inviter": inviter.ref_code}, format="json").status_code == 200
        )
    answer = _client_for(users[0]).patch(MY_PROFILE, {"my_inviter": users[-1].ref_code}, format="json")
    assert answer.status_code == 400
    assert "invited" in answer.json()["my_inviter"][0]
    assert not Referral.objects.filter(invitee=users[0]).exists()


# --- the staff API: who may use it ---


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_all_profiles_detail_needs_a_token(api, user, method):
    assert getattr(api, method)(_detail(user)).status_code == 401


def test_all_profiles_needs_a_token(api):
    assert api.get(ALL_PROFILES).status_code == 401


def test_all_profiles_is_forbidden_to_non_staff(auth_api, user):
    other = UserFactory()
    assert auth_api.get(ALL_PROFILES).status_code == 403
    assert auth_api.get(_detail(other)).status_code == 403
    assert auth_api.patch(_detail(user), {"is_active": False}, format="json").status_code == 403
    assert auth_api.delete(_detail(other)).status_code == 403
    assert User.objects.filter(pk=other.pk).exists()
    user.refresh_from_db()
    assert user.is_active


# --- the staff list ---


def test_all_profiles_lists_every_user_paginated(staff_api):
    users = [UserFactory() for _ in range(24)]
    _invite(users[0], users[1], users[2])
    body = staff_api.get(ALL_PROFILES).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 25  # with the staff user
    assert len(body["results"]) == 20
    assert body["previous"] is None
    assert "page=2" in body["next"]
    first = next(p for p in body["results"] if p["id"] == users[0].pk)
    assert first["my_refs"] == [{"phone": users[1].phone}, {"phone": users[2].phone}]
    assert {"id", "phone", "my_refs", "my_inviter", "my_ref_code", "created_at", "is_active", "is_staff"} <= set(first)
    second = next(p for p in body["results"] if p["id"] == users[1].pk)
    assert second["my_inviter"] == users[0].phone

    page2 = staff_api.get(ALL_PROFILES, {"page": 2}).json()
    assert len(page2["results"]) == 5
    assert page2["next"] is None
    seen = [p["id"] for p in body["results"] + page2["results"]]
    assert sorted(seen) == sorted({*[u.pk for u in users], staff_api.user.pk})


def test_all_profiles_pages_follow_the_ids_and_keep_the_search(staff_api):
    # Pages are read through a subquery of ids (selectors.ProfileRows): the filter and the
    # order must hold on every page, not only on the first.
    matching = [UserFactory(phone=f"+7999555{i:04d}") for i in range(25)]
    others = [UserFactory() for _ in range(10)]
    _invite(others[0], matching[21])
    pages = [staff_api.get(ALL_PROFILES, {"search": "7999555", "page_size": 10, "page": n}).json() for n in (1, 2, 3)]
    assert [body["count"] for body in pages] == [25, 25, 25]
    assert [[p["id"] for p in body["results"]] for body in pages] == [
        [u.pk for u in matching[:10]],
        [u.pk for u in matching[10:20]],
        [u.pk for u in matching[20:]],
    ]
    assert pages[2]["results"][1]["my_inviter"] == others[0].phone


def test_all_profiles_page_size_is_capped_at_100(staff_api):
    for _ in range(105):
        UserFactory()
    assert len(staff_api.get(ALL_PROFILES, {"page_size": 7}).json()["results"]) == 7
    assert len(staff_api.get(ALL_PROFILES, {"page_size": 1000}).json()["results"]) == 100


@pytest.mark.parametrize("query", [{"page": 99}, {"page": "abc"}, {"page": -1}])
def test_all_profiles_answers_404_for_a_page_that_does_not_exist(staff_api, query):
    answer = staff_api.get(ALL_PROFILES, query)
    assert answer.status_code == 404
    assert "detail" in answer.json()


@pytest.mark.parametrize("page", ["", "last", "\u0662", "1_1", "+2", " 2", "2 ", "2.0", "0x2", "1e1"])
def test_all_profiles_answers_404_for_a_page_that_is_not_a_plain_positive_integer(staff_api, page):
    for _ in range(30):
        UserFactory()
    answer = staff_api.get(ALL_PROFILES, {"page": page, "page_size": 1})
    assert answer.status_code == 404, page
    assert answer.json() == {"detail": "Invalid page."}


def test_all_profiles_takes_a_plain_page_number_with_leading_zeros(staff_api):
    users = [UserFactory() for _ in range(3)]
    answer = staff_api.get(ALL_PROFILES, {"page": "02", "page_size": 1})
    assert [p["id"] for p in answer.json()["results"]] == [users[0].pk]


@pytest.mark.parametrize("query", [{"search": "\x00"}, {"search": "x" * 5000}])
def test_all_profiles_never_fails_on_odd_query_parameters(staff_api, query):
    assert staff_api.get(ALL_PROFILES, query).status_code == 200


@pytest.mark.parametrize("page_size", ["abc", "null", 0, -5, "1.5"])
def test_all_profiles_answers_400_for_a_page_size_that_is_not_a_whole_number_from_1(staff_api, page_size):
    answer = staff_api.get(ALL_PROFILES, {"page_size": page_size})
    assert answer.status_code == 400
    assert answer.json()["page_size"]


def test_all_profiles_searches_by_phone_fragment_and_by_code(staff_api):
    target = UserFactory(phone="+79995551234")
    UserFactory(phone="+79990000077")
    by_phone = staff_api.get(ALL_PROFILES, {"search": "5551234"}).json()
    assert [p["id"] for p in by_phone["results"]] == [target.pk]
    assert by_phone["count"] == 1
    by_full_phone = staff_api.get(ALL_PROFILES, {"search": "+79995551234"}).json()
    assert [p["id"] for p in by_full_phone["results"]] == [target.pk]
    by_code = staff_api.get(ALL_PROFILES, {"search": target.ref_code.upper()}).json()
    assert [p["id"] for p in by_code["results"]] == [target.pk]
    assert staff_api.get(ALL_PROFILES, {"search": "nobody"}).json()["count"] == 0


@pytest.mark.parametrize(
    "search",
    ["9162214567", "79162214567", "+7 916 221-45-67", "8 (916) 221-45-67", "221-45-67", "2214567"],
)
def test_all_profiles_search_matches_the_digits_of_a_phone(staff_api, search):
    """Digits match digits: a national number, a fragment with separators or a national
    spelling finds every phone containing those digits, whatever its country."""
    russian, american = UserFactory(phone="+79162214567"), UserFactory(phone="+19162214567")
    UserFactory(phone="+79990000077")
    found = {p["id"] for p in staff_api.get(ALL_PROFILES, {"search": search}).json()["results"]}
    expected = {russian.pk} if search.startswith(("7", "+7", "8")) else {russian.pk, american.pk}
    assert found == expected, search


def test_all_profiles_search_by_a_national_number_finds_it(staff_api):
    target = UserFactory(phone="+79990000008")
    UserFactory(phone="+79990000077")
    body = staff_api.get(ALL_PROFILES, {"search": "9990000008"}).json()
    assert [p["id"] for p in body["results"]] == [target.pk]


@pytest.mark.parametrize("page_size", [1, 20, 100])
def test_an_all_profiles_page_takes_a_constant_number_of_queries(staff_api, page_size, django_assert_max_num_queries):
    users = [UserFactory() for _ in range(120)]
    # Everyone has an inviter and some have many referrals.
    for i, invitee in enumerate(users[1:], start=1):
        Referral.objects.create(invitee=invitee, inviter=users[i // 10])
    # authenticate (1) + the view_user permission (2: Django's ModelBackend reads the user's own
    # and their groups' permissions) + count (1) + page (1) + all the page's referrals (1)
    with django_assert_max_num_queries(6):
        body = staff_api.get(ALL_PROFILES, {"page_size": page_size}).json()
    assert len(body["results"]) == page_size


# --- the staff detail ---


def test_all_profiles_detail_shows_one_profile(staff_api):
    inviter, user, invitee = UserFactory(), UserFactory(), UserFactory()
    _invite(inviter, user)
    _invite(user, invitee)
    body = staff_api.get(_detail(user)).json()
    assert body["id"] == user.pk
    assert body["phone"] == user.phone
    assert body["my_inviter"] == inviter.phone
    assert body["my_refs"] == [{"phone": invitee.phone}]
    assert body["my_ref_code"] == user.ref_code


def test_all_profiles_detail_shows_a_disabled_user(staff_api):
    user = UserFactory(is_active=False)
    answer = staff_api.get(_detail(user))
    assert answer.status_code == 200
    assert answer.json()["is_active"] is False


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_all_profiles_detail_answers_404_for_a_missing_user(staff_api, method):
    answer = getattr(staff_api, method)(f"{ALL_PROFILES}999999999/", {}, format="json")
    assert answer.status_code == 404


def test_staff_patch_changes_phone_and_is_active(staff_api, user):
    answer = staff_api.patch(_detail(user), {"phone": "8 (999) 555-00-11", "is_active": False}, format="json")
    assert answer.status_code == 200
    assert answer.json()["phone"] == "+79995550011"
    assert answer.json()["is_active"] is False
    user.refresh_from_db()
    assert (user.phone, user.is_active) == ("+79995550011", False)


def test_staff_patch_refuses_a_phone_that_is_taken(staff_api, user):
    other = UserFactory()
    answer = staff_api.patch(_detail(user), {"phone": other.phone}, format="json")
    assert answer.status_code == 400
    assert list(answer.json()) == ["phone"]
    user.refresh_from_db()
    assert user.phone != other.phone


@pytest.mark.parametrize("phone", ["", "garbage", "+1", None, 5, ["+79990000000"]])
def test_staff_patch_refuses_a_phone_that_is_not_one(staff_api, user, phone):
    answer = staff_api.patch(_detail(user), {"phone": phone}, format="json")
    assert answer.status_code == 400
    assert "phone" in answer.json()


@pytest.mark.parametrize("is_active", [None, "maybe", [True]])
def test_staff_patch_refuses_an_is_active_that_is_not_a_boolean(staff_api, user, is_active):
    answer = staff_api.patch(_detail(user), {"is_active": is_active}, format="json")
    assert answer.status_code == 400
    assert "is_active" in answer.json()


def test_staff_patch_sets_and_replaces_the_inviter(staff_api, user):
    first, second = UserFactory(), UserFactory()
    answer = staff_api.patch(_detail(user), {"my_inviter": first.ref_code.upper()}, format="json")
    assert answer.status_code == 200
    assert answer.json()["my_inviter"] == first.phone
    answer = staff_api.patch(_detail(user), {"my_inviter": second.ref_code}, format="json")
    assert answer.status_code == 200
    assert answer.json()["my_inviter"] == second.phone


def test_staff_patch_with_null_clears_the_inviter(staff_api, user):
    _invite(UserFactory(), user)
    answer = staff_api.patch(_detail(user), {"my_inviter": None}, format="json")
    assert answer.status_code == 200
    assert answer.json()["my_inviter"] is None
    assert not Referral.objects.filter(invitee=user).exists()


def test_staff_patch_refuses_own_code(staff_api, user):
    answer = staff_api.patch(_detail(user), {"my_inviter": user.ref_code}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"my_inviter": ["You cannot enter your own referral code."]}


def test_staff_patch_refuses_a_cycle(staff_api):
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    _invite(a, b)
    _invite(b, c)
    answer = staff_api.patch(_detail(a), {"my_inviter": c.ref_code}, format="json")
    assert answer.status_code == 400
    assert "invited" in answer.json()["my_inviter"][0]


@pytest.mark.parametrize("code", ["", "zzzzzz", 5, ["abc"]])
def test_staff_patch_refuses_an_unusable_code(staff_api, user, code):
    answer = staff_api.patch(_detail(user), {"my_inviter": code}, format="json")
    assert answer.status_code == 400
    assert "my_inviter" in answer.json()


def test_a_refused_staff_patch_changes_nothing(staff_api, user):
    old_phone = user.phone
    answer = staff_api.patch(
        _detail(user), {"phone": "+79995550022", "is_active": False, "my_inviter": user.ref_code}, format="json"
    )
    assert answer.status_code == 400
    user.refresh_from_db()
    assert (user.phone, user.is_active) == (old_phone, True)


def test_staff_delete_removes_the_user_but_keeps_the_people_they_invited(staff_api):
    inviter, a, b = UserFactory(), UserFactory(), UserFactory()
    _invite(inviter, a, b)
    answer = staff_api.delete(_detail(inviter))
    assert answer.status_code == 204
    assert not User.objects.filter(pk=inviter.pk).exists()
    assert User.objects.filter(pk__in=[a.pk, b.pk]).count() == 2
    assert staff_api.get(_detail(a)).json()["my_inviter"] is None
    assert staff_api.get(_detail(inviter)).status_code == 404
