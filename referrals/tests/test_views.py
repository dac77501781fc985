"""The profile page through Django's test client."""

import pytest
from django.test import Client

from accounts.phones import phone_display
from referrals.models import Referral
from tests.factories import ReferralFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def me(client, user):
    client.force_login(user)
    return user


def set_inviter(client, code):
    return client.post("/my_profile/", {"my_inviter": code})


def test_the_profile_needs_a_login_and_sends_you_home(client):
    response = client.get("/my_profile/")
    assert response.status_code == 302
    assert response.url == "/?next=/my_profile/"


def test_it_shows_phone_own_code_and_the_inviter_form(client, me):
    response = client.get("/my_profile/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="my-phone">{phone_display(me.phone)}<' in html
    assert f'<code id="my-ref-code">{me.ref_code}</code>' in html
    assert 'data-copy-target="my-ref-code"' in html
    assert "/static/js/copy.js" in html
    assert '<label for="id_my_inviter">' in html
    assert "Nobody yet." in html


def test_it_lists_the_people_who_used_my_code(client, me):
    first, second = UserFactory(), UserFactory()
    ReferralFactory(inviter=me, invitee=first)
    ReferralFactory(inviter=me, invitee=second)
    response = client.get("/my_profile/")
    refs = [ref["phone"] for ref in response.context["profile"]["my_refs"]]
    html = response.content.decode()
    assert refs == [first.phone, second.phone]
    assert f'<li class="phone">{phone_display(first.phone)}</li>' in html
    assert f'<li class="phone">{phone_display(second.phone)}</li>' in html


def test_it_sets_the_inviter_from_a_code_typed_in_capitals(client, me):
    inviter = UserFactory()
    response = client.post("/my_profile/", {"my_inviter": f" {inviter.ref_code.upper()} "}, follow=True)
    html = response.content.decode()
    assert response.redirect_chain == [("/my_profile/", 302)]
    assert f"Saved: you were invited by {phone_display(inviter.phone)}." in html
    assert f'Invited by <strong class="phone">{phone_display(inviter.phone)}</strong>' in html
    assert 'name="my_inviter"' not in html
    assert Referral.objects.get(invitee=me).inviter == inviter


def test_it_refuses_a_second_inviter(client, me):
    first, second = UserFactory(), UserFactory()
    set_inviter(client, first.ref_code)
    response = set_inviter(client, second.ref_code)
    html = response.content.decode()
    assert response.status_code == 400
    assert "You have already entered an inviter&#x27;s code." in html
    assert f'Invited by <strong class="phone">{phone_display(first.phone)}</strong>' in html
    assert Referral.objects.get(invitee=me).inviter == first


def test_it_refuses_an_unknown_code_next_to_the_field_and_keeps_it(client, me):
    response = set_inviter(client, "zzzzzz")
    html = response.content.decode()
    assert response.status_code == 400
    assert '<ul class="errorlist" id="id_my_inviter_error"><li>No user has this referral code.</li></ul>' in html
    assert 'value="zzzzzz"' in html
    assert not Referral.objects.filter(invitee=me).exists()


def test_it_refuses_my_own_code(client, me):
    response = set_inviter(client, me.ref_code)
    assert response.status_code == 400
    assert "You cannot enter your own referral code." in response.content.decode()


def test_it_refuses_a_code_that_would_close_a_cycle(client, me):
    child = UserFactory()
    grandchild = UserFactory()
    ReferralFactory(inviter=me, invitee=child)
    ReferralFactory(inviter=child, invitee=grandchild)
    response = set_inviter(client, grandchild.ref_code)
    assert response.status_code == 400
    assert "This code belongs to someone you invited" in response.content.decode()


@pytest.mark.parametrize(
    ("typed", "message"), [("", "Enter your inviter&#x27;s referral code."), ("x" * 65, "at most 64")]
)
def test_it_explains_an_empty_or_overlong_code(client, me, typed, message):
    response = set_inviter(client, typed)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_inviter_form_needs_a_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/my_profile/")
    assert client.post("/my_profile/", {"my_inviter": UserFactory().ref_code}).status_code == 403
    assert not Referral.objects.filter(invitee=user).exists()


def test_a_disabled_user_is_logged_out_of_the_page(client, me):
    me.is_active = False
    me.save()
    response = client.get("/my_profile/")
    assert response.status_code == 302
    assert response.url.startswith("/")
