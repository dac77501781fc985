"""The Django admin for users: list, search, filters, referrals on the page, the inviter rules."""

from unittest import mock

import pytest
from django.contrib.auth.hashers import make_password

from accounts.models import User
from accounts.phones import phone_display
from referrals.models import Referral
from referrals.services import inviter_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"


def _change_url(user):
    return f"{CHANGELIST}{user.pk}/change/"


@pytest.fixture
def admin_client(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.admin = admin
    return client


def _form_data(user, **changes):
    """What the change form posts when nothing is edited, with `changes` applied."""
    link = Referral.objects.filter(invitee=user).select_related("inviter").first()
    data = {
        "phone": user.phone,
        "inviter_code": link.inviter.ref_code if link else "",
        "referrals_made-TOTAL_FORMS": "0",
        "referrals_made-INITIAL_FORMS": "0",
        "referrals_made-MIN_NUM_FORMS": "0",
        "referrals_made-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    if user.is_active:
        data["is_active"] = "on"  # an unchecked box is simply absent
    return {**data, **changes}


def test_the_user_list_shows_phone_code_inviter_referral_count_joined_and_staff(admin_client):
    inviter, a, b = UserFactory(), UserFactory(), UserFactory()
    inviter_set(user_id=a.pk, code=inviter.ref_code)
    inviter_set(user_id=b.pk, code=inviter.ref_code)
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    html = page.content.decode()
    for column in ("column-phone", "column-ref_code", "column-inviter_phone", "column-referrals_count"):
        assert column in html
    assert "column-created_at" in html and "column-is_staff" in html
    # Phones as people write them (point 5 of issue 22); E.164 stays in the data.
    assert inviter.ref_code in html and phone_display(a.phone) in html and a.phone not in html
    rows = {row.phone: row for row in page.context["cl"].result_list}
    assert rows[inviter.phone].referrals_total == 2
    assert rows[a.phone].referrals_total == 0
    admin = page.context["cl"].model_admin
    assert admin.inviter_phone(rows[a.phone]) == phone_display(inviter.phone)
    assert admin.inviter_phone(rows[inviter.phone]) == "-"


def test_the_user_list_takes_a_constant_number_of_queries(admin_client, django_assert_max_num_queries):
    users = [UserFactory() for _ in range(60)]
    for i, invitee in enumerate(users[1:], start=1):
        Referral.objects.create(invitee=invitee, inviter=users[i // 10])
    # session, user, count, filtered count, page and its facets: not one per row
    with django_assert_max_num_queries(12):
        assert admin_client.get(CHANGELIST).status_code == 200


def test_the_user_list_searches_by_phone_and_by_code(admin_client):
    target, other = UserFactory(phone="+79995554433"), UserFactory()
    by_phone = admin_client.get(CHANGELIST, {"q": "5554433"}).context["cl"].result_list
    assert [u.pk for u in by_phone] == [target.pk]
    by_code = admin_client.get(CHANGELIST, {"q": target.ref_code}).context["cl"].result_list
    assert [u.pk for u in by_code] == [target.pk]
    assert other.pk not in [u.pk for u in by_code]


def test_the_user_list_filters_by_staff_and_active(admin_client):
    UserFactory(is_active=False)
    staff_only = admin_client.get(CHANGELIST, {"is_staff__exact": "1"}).context["cl"].result_list
    assert [u.pk for u in staff_only] == [admin_client.admin.pk]
    inactive = admin_client.get(CHANGELIST, {"is_active__exact": "0"}).context["cl"].result_list
    assert len(inactive) == 1 and not inactive[0].is_active


def test_the_user_page_shows_the_referrals_and_the_inviter_code(admin_client):
    inviter, user, invitee = UserFactory(), UserFactory(), UserFactory()
    inviter_set(user_id=user.pk, code=inviter.ref_code)
    inviter_set(user_id=invitee.pk, code=user.ref_code)
    page = admin_client.get(_change_url(user))
    assert page.status_code == 200
    html = page.content.decode()
    assert "people who entered this user" in html
    assert phone_display(invitee.phone) in html
    assert page.context["adminform"].form["inviter_code"].value() == inviter.ref_code


def test_the_user_page_has_no_raw_password_hash_field_but_links_the_password_form(admin_client):
    user = UserFactory()
    user.password = make_password("s3cret-pass")
    user.save()
    page = admin_client.get(_change_url(user))
    html = page.content.decode()
    assert 'name="password"' not in html
    assert user.password not in html
    assert "../password/" in html
    assert admin_client.get(f"{CHANGELIST}{user.pk}/password/").status_code == 200


def test_the_password_form_sets_a_password(admin_client):
    user = UserFactory()
    answer = admin_client.post(
        f"{CHANGELIST}{user.pk}/password/",
        {"password1": "a-long-Passw0rd!", "password2": "a-long-Passw0rd!", "usable_password": "true"},
    )
    assert answer.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-long-Passw0rd!")


def test_the_add_form_creates_a_user_with_a_code(admin_client):
    answer = admin_client.post(
        f"{CHANGELIST}add/",
        {
            "phone": "8 999 777-66-55",
            "usable_password": "true",
            "password1": "a-long-Passw0rd!",
            "password2": "a-long-Passw0rd!",
        },
    )
    assert answer.status_code == 302, answer.context and answer.context["adminform"].form.errors
    user = User.objects.get(phone="+79997776655")
    assert len(user.ref_code) == 6


def test_the_add_form_draws_the_code_again_on_a_collision(admin_client):
    taken = UserFactory().ref_code
    fresh = "zzzzzz" if taken != "zzzzzz" else "yyyyyy"
    # Codes are drawn with secrets.choice: first the taken code, then a fresh one.
    with mock.patch("accounts.ref_codes.secrets", **{"choice.side_effect": [*taken, *fresh]}):
        answer = admin_client.post(
            f"{CHANGELIST}add/",
            {
                "phone": "+79997776644",
                "usable_password": "true",
                "password1": "a-long-Passw0rd!",
                "password2": "a-long-Passw0rd!",
            },
        )
    assert answer.status_code == 302
    user = User.objects.get(phone="+79997776644")
    assert user.ref_code == fresh
    assert user.check_password("a-long-Passw0rd!")


def test_the_change_page_sets_an_inviter_by_code(admin_client):
    inviter, user = UserFactory(), UserFactory()
    answer = admin_client.post(_change_url(user), _form_data(user, inviter_code=inviter.ref_code.upper()))
    assert answer.status_code == 302
    assert Referral.objects.get(invitee=user).inviter == inviter


def test_the_change_page_with_an_empty_code_removes_the_inviter(admin_client):
    inviter, user = UserFactory(), UserFactory()
    inviter_set(user_id=user.pk, code=inviter.ref_code)
    answer = admin_client.post(_change_url(user), _form_data(user, inviter_code=""))
    assert answer.status_code == 302
    assert not Referral.objects.filter(invitee=user).exists()


def test_the_change_page_keeps_the_inviter_when_other_fields_change(admin_client):
    inviter, user = UserFactory(), UserFactory()
    inviter_set(user_id=user.pk, code=inviter.ref_code)
    answer = admin_client.post(_change_url(user), _form_data(user, phone="+79995550033"))
    assert answer.status_code == 302
    user.refresh_from_db()
    assert user.phone == "+79995550033"
    assert Referral.objects.get(invitee=user).inviter == inviter


def _refused(admin_client, user, code):
    answer = admin_client.post(_change_url(user), _form_data(user, inviter_code=code))
    assert answer.status_code == 200  # the form again, with the error next to the field
    return answer.context["adminform"].form.errors["inviter_code"]


def test_the_change_page_refuses_own_code(admin_client):
    user = UserFactory()
    assert _refused(admin_client, user, user.ref_code) == ["You cannot enter your own referral code."]
    assert not Referral.objects.exists()


def test_the_change_page_refuses_a_code_nobody_has(admin_client):
    user = UserFactory()
    assert _refused(admin_client, user, "zzzzzz") == ["No user has this referral code."]
    assert _refused(admin_client, user, "not a code") == ["No user has this referral code."]


def test_the_change_page_refuses_a_cycle(admin_client):
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    inviter_set(user_id=b.pk, code=a.ref_code)
    inviter_set(user_id=c.pk, code=b.ref_code)
    errors = _refused(admin_client, a, c.ref_code)
    assert "invited" in errors[0]
    assert not Referral.objects.filter(invitee=a).exists()


def test_a_refused_inviter_saves_nothing_else(admin_client):
    user = UserFactory()
    old_phone = user.phone
    _refused(admin_client, user, user.ref_code)
    admin_client.post(_change_url(user), _form_data(user, phone="+79995550044", inviter_code=user.ref_code))
    user.refresh_from_db()
    assert user.phone == old_phone


def test_the_change_page_refuses_a_phone_that_is_taken(admin_client):
    user, other = UserFactory(), UserFactory()
    answer = admin_client.post(_change_url(user), _form_data(user, phone=other.phone))
    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors["phone"] == ["Another user has this phone number."]


def test_the_admin_is_closed_to_non_staff(client):
    client.force_login(UserFactory())
    answer = client.get(CHANGELIST)
    assert answer.status_code == 302
    assert "/admin/login/" in answer["Location"]


def test_a_rule_that_fails_only_under_the_lock_shows_an_error_and_saves_nothing(admin_client):
    """The form's check passed, then a concurrent edit closed a cycle before the save: the
    check under the lock refuses it (the form's check is skipped here to force that branch)."""
    a, b = UserFactory(), UserFactory()
    inviter_set(user_id=b.pk, code=a.ref_code)
    old_phone = a.phone
    with mock.patch("referrals.admin.inviter_check"):
        answer = admin_client.post(
            _change_url(a), _form_data(a, phone="+79995550055", inviter_code=b.ref_code), follow=True
        )
    assert answer.status_code == 200
    assert any("invited" in str(m) for m in answer.context["messages"])
    a.refresh_from_db()
    assert a.phone == old_phone
    assert not Referral.objects.filter(invitee=a).exists()
