"""Staff powers (issue 19.1): Django's model permissions on the admin API, and only a superuser
changes, deactivates or deletes a staff or superuser account, on the admin API and the Django
admin alike. Nobody changes their own staff flags."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from project.exceptions import ApplicationError
from referrals import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ALL_PROFILES = "/api/v1/all_profiles/"
CHANGELIST = "/admin/accounts/user/"
ONLY_A_SUPERUSER = "Only a superuser may change, deactivate or delete a staff or superuser account."


def _staff(*perms, superuser=False):
    staff = UserFactory(is_staff=True, is_superuser=superuser)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="accounts", codename__in=perms))
    return staff


def _api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _detail(user):
    return f"{ALL_PROFILES}{user.pk}/"


# --- the admin API: model permissions ---


def test_staff_without_view_user_may_not_list_or_read_profiles():
    api = _api(_staff())
    for answer in (api.get(ALL_PROFILES), api.get(_detail(UserFactory()))):
        assert answer.status_code == 403
        assert answer.json() == {"detail": "You need the accounts.view_user permission."}


def test_staff_with_view_user_list_and_read_profiles():
    api, user = _api(_staff("view_user")), UserFactory()
    assert api.get(ALL_PROFILES).status_code == 200
    assert api.get(_detail(user)).json()["phone"] == user.phone


def test_staff_without_change_user_may_not_edit_a_profile():
    user = UserFactory()
    answer = _api(_staff("view_user", "delete_user")).patch(_detail(user), {"phone": "+79995550101"}, format="json")
    assert answer.status_code == 403
    assert answer.json() == {"detail": "You need the accounts.change_user permission."}
    user.refresh_from_db()
    assert user.phone != "+79995550101"


def test_staff_without_delete_user_may_not_delete_a_profile():
    user = UserFactory()
    answer = _api(_staff("view_user", "change_user")).delete(_detail(user))
    assert answer.status_code == 403
    assert answer.json() == {"detail": "You need the accounts.delete_user permission."}
    assert User.objects.filter(pk=user.pk).exists()


def test_staff_with_change_and_delete_user_edit_and_delete_a_plain_user():
    api = _api(_staff("view_user", "change_user", "delete_user"))
    user = UserFactory()
    answer = api.patch(_detail(user), {"phone": "+79995550102", "is_active": False}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["phone"], answer.json()["is_active"]) == ("+79995550102", False)
    assert api.delete(_detail(user)).status_code == 204


# --- the admin API: staff and superuser accounts ---


@pytest.mark.parametrize("target_kind", ["superuser", "staff"])
@pytest.mark.parametrize(
    "body", [{"phone": "+79995550103"}, {"is_active": False}, {"my_inviter": None}], ids=["phone", "off", "inviter"]
)
def test_a_staff_user_cannot_change_a_staff_or_superuser_account(target_kind, body):
    target = UserFactory(is_staff=True, is_superuser=target_kind == "superuser")
    before = (target.phone, target.is_active)
    answer = _api(_staff("view_user", "change_user")).patch(_detail(target), body, format="json")
    assert answer.status_code == 403
    assert answer.json() == {"detail": ONLY_A_SUPERUSER}
    target.refresh_from_db()
    assert (target.phone, target.is_active) == before


@pytest.mark.parametrize("target_kind", ["superuser", "staff"])
def test_a_staff_user_cannot_delete_a_staff_or_superuser_account(target_kind):
    target = UserFactory(is_staff=True, is_superuser=target_kind == "superuser")
    answer = _api(_staff("view_user", "delete_user")).delete(_detail(target))
    assert answer.status_code == 403
    assert answer.json() == {"detail": ONLY_A_SUPERUSER}
    assert User.objects.filter(pk=target.pk).exists()


def test_a_staff_user_cannot_change_their_own_account_either():
    staff = _staff("view_user", "change_user")
    answer = _api(staff).patch(_detail(staff), {"phone": "+79995550104"}, format="json")
    assert answer.status_code == 403
    staff.refresh_from_db()
    assert staff.phone != "+79995550104"


def test_a_superuser_changes_and_deletes_a_staff_account():
    api, target = _api(_staff(superuser=True)), UserFactory(is_staff=True)
    answer = api.patch(_detail(target), {"phone": "+79995550105", "is_active": False}, format="json")
    assert answer.status_code == 200
    assert answer.json()["phone"] == "+79995550105"
    assert api.delete(_detail(target)).status_code == 204


def test_nobody_deactivates_their_own_account_through_the_api():
    admin = _staff(superuser=True)
    answer = _api(admin).patch(_detail(admin), {"is_active": False}, format="json")
    assert answer.status_code == 403
    assert answer.json() == {"detail": "Nobody changes their own is_active, is_staff or is_superuser."}
    admin.refresh_from_db()
    assert admin.is_active


# --- the service: the one place the rule lives ---


def test_profile_update_refuses_a_staff_actor_on_a_superuser():
    target = UserFactory(is_staff=True, is_superuser=True)
    with pytest.raises(ApplicationError) as refused:
        services.profile_update(actor=_staff("change_user"), user_id=target.pk, phone="+79995550106")
    assert refused.value.status_code == 403


def test_profile_update_refuses_a_staff_actor_making_someone_staff_or_superuser():
    user = UserFactory()
    for flag in ("is_staff", "is_superuser"):
        with pytest.raises(ApplicationError):
            services.profile_update(actor=_staff("change_user"), user_id=user.pk, **{flag: True})
    user.refresh_from_db()
    assert not (user.is_staff or user.is_superuser)


def test_user_delete_refuses_a_staff_actor_on_a_staff_account():
    target = UserFactory(is_staff=True)
    with pytest.raises(ApplicationError):
        services.user_delete(actor=_staff("delete_user"), user_id=target.pk)
    assert User.objects.filter(pk=target.pk).exists()


# --- the Django admin: the same rule through the same service ---


def _admin_client(client, *perms):
    staff = _staff("view_user", *perms)
    client.force_login(staff)
    return client


def _form_data(user, **changes):
    data = {
        "phone": user.phone,
        "inviter_code": "",
        "referrals_made-TOTAL_FORMS": "0",
        "referrals_made-INITIAL_FORMS": "0",
        "is_active": "on",
        "_save": "Save",
    }
    return {**data, **changes}


def test_in_the_admin_a_staff_user_cannot_change_a_superuser(client):
    admin = _admin_client(client, "change_user")
    target = UserFactory(is_staff=True, is_superuser=True)
    answer = admin.post(f"{CHANGELIST}{target.pk}/change/", _form_data(target, phone="+79995550107"))
    assert answer.status_code == 403
    target.refresh_from_db()
    assert target.phone != "+79995550107"
    assert admin.get(f"{CHANGELIST}{target.pk}/password/").status_code == 403
    view_only = admin.get(f"{CHANGELIST}{target.pk}/change/")
    assert view_only.status_code == 200
    assert 'name="phone"' not in view_only.content.decode()


def test_in_the_admin_a_staff_user_cannot_make_a_plain_user_superuser(client):
    admin = _admin_client(client, "change_user")
    user = UserFactory()
    answer = admin.post(f"{CHANGELIST}{user.pk}/change/", _form_data(user, is_staff="on", is_superuser="on"))
    assert answer.status_code in (200, 302, 403)
    user.refresh_from_db()
    assert not (user.is_staff or user.is_superuser)


def test_in_the_admin_a_staff_user_cannot_delete_a_superuser(client):
    admin = _admin_client(client, "delete_user")
    target = UserFactory(is_staff=True, is_superuser=True)
    assert admin.post(f"{CHANGELIST}{target.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [target.pk], "post": "yes"})
    assert bulk.status_code == 403
    assert User.objects.filter(pk=target.pk).exists()


def test_in_the_admin_a_staff_user_deletes_a_plain_user(client):
    admin = _admin_client(client, "delete_user")
    user = UserFactory()
    assert admin.post(f"{CHANGELIST}{user.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()


def test_in_the_admin_a_superuser_changes_a_staff_account(client):
    client.force_login(_staff(superuser=True))
    target = UserFactory(is_staff=True)
    answer = client.post(f"{CHANGELIST}{target.pk}/change/", _form_data(target, phone="+79995550108", is_staff="on"))
    assert answer.status_code == 302
    target.refresh_from_db()
    assert target.phone == "+79995550108"
