"""accounts.tokens.RefreshToken: the outstanding-token row simplejwt writes, in one INSERT, and the
token signed once."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken as SimpleJwtRefreshToken

from accounts.models import User
from accounts.tokens import RefreshToken

pytestmark = pytest.mark.django_db


def _row(jti):
    return OutstandingToken.objects.filter(jti=jti).values("user_id", "token", "created_at", "expires_at").get()


def test_the_row_is_simplejwts_row():
    user = User.objects.create_user(phone="+79991234567")
    ours = RefreshToken.for_user(user)
    theirs = SimpleJwtRefreshToken.for_user(user)
    mine, stock = _row(ours["jti"]), _row(theirs["jti"])
    assert mine["user_id"] == stock["user_id"] == user.pk
    assert mine["token"] == str(ours) and stock["token"] == str(theirs)
    assert mine["expires_at"].timestamp() == ours["exp"] and stock["expires_at"].timestamp() == theirs["exp"]
    assert mine["created_at"] == ours.current_time and stock["created_at"] == theirs.current_time
    # The token works where simplejwt's does: it can be read back and blacklisted.
    parsed = SimpleJwtRefreshToken(str(ours))
    parsed.blacklist()
    assert OutstandingToken.objects.get(jti=ours["jti"]).blacklistedtoken is not None


def test_issuing_is_one_insert():
    user = User.objects.create_user(phone="+79991234568")
    with CaptureQueriesContext(connection) as queries:
        RefreshToken.for_user(user)
    assert len(queries) == 1 and queries[0]["sql"].startswith("INSERT INTO")


def test_the_string_is_signed_once_and_follows_the_claims(monkeypatch):
    from rest_framework_simplejwt.backends import TokenBackend

    user = User.objects.create_user(phone="+79991234569")
    signed = []
    real = TokenBackend.encode
    monkeypatch.setattr(TokenBackend, "encode", lambda self, payload: signed.append(1) or real(self, payload))
    token = RefreshToken.for_user(user)
    first = str(token)
    assert str(token) == first and len(signed) == 1  # the row's string is the answer's
    assert _row(token["jti"])["token"] == first
    token.set_jti()  # a claim changes (rotation does this): the string is signed again
    assert str(token) != first and len(signed) == 2
    assert SimpleJwtRefreshToken(str(token))["jti"] == token["jti"]
