"""A returning user's login on PostgreSQL: the user and the code's match are read, then one
statement, outside any transaction, counts the try, uses the code and writes the refresh token's
row (accounts.services._login_in_one_statement). Everything else takes the transaction path.

These tests run without a surrounding transaction (transaction=True), as the API does.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import PhoneCode, User
from accounts.tokens import RefreshToken as OurRefreshToken

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = "+79991234567"


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


def code_for(phone=PHONE) -> str:
    answer = APIClient().post("/api/v1/auth/signup/", {"phone": phone}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()["confirmation_code"]


def login(phone, code):
    return APIClient().post("/api/v1/auth/token/", {"phone": phone, "confirmation_code": code}, format="json")


def statements_of(call) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        result = call()
    return result, [q["sql"] for q in queries.captured_queries]


def rows_for(user):
    return [OurRefreshToken.for_user_unsaved(user)[1]]


def test_a_returning_users_login_is_a_read_and_one_statement_outside_a_transaction():
    code = code_for()
    existing = User.objects.create_user(phone=PHONE)
    user, statements = statements_of(lambda: services.code_verify(phone=PHONE, code=code, login_rows=rows_for))
    assert len(statements) == 2, statements
    assert statements[0].startswith("SELECT (SELECT c.code_hash = ")
    assert statements[1].startswith("WITH attempt AS (UPDATE") and "INSERT INTO" in statements[1]
    assert user.pk == existing.pk
    challenge = PhoneCode.objects.get()
    assert challenge.consumed_at is not None and challenge.attempts == 1
    assert OutstandingToken.objects.get().user_id == existing.pk


def test_the_api_answers_with_the_token_whose_row_was_written():
    code = code_for()
    existing = User.objects.create_user(phone=PHONE)
    answer = login(PHONE, code)
    assert answer.status_code == 200, answer.content
    refresh = RefreshToken(answer.json()["refresh"])
    row = OutstandingToken.objects.get()
    assert (row.jti, row.token, row.user_id) == (refresh["jti"], answer.json()["refresh"], existing.pk)
    assert int(RefreshToken(answer.json()["refresh"]).access_token["user_id"]) == existing.pk
    assert login(PHONE, code).status_code == 400  # used


def test_a_wrong_try_runs_the_same_statements_for_a_registered_and_an_unregistered_phone():
    """How long a wrong try takes must not tell whether the phone has an account."""
    other = "+79997654321"
    User.objects.create_user(phone=PHONE)
    seen = []
    for phone in (PHONE, other):
        code = code_for(phone)
        wrong = f"{(int(code) + 1) % 10_000:04d}"
        with CaptureQueriesContext(connection) as queries, pytest.raises(services.AuthenticationFailed):
            services.code_verify(phone=phone, code=wrong, login_rows=rows_for)
        seen.append([q["sql"] for q in queries.captured_queries])
        assert PhoneCode.objects.get(phone=phone).attempts == 1  # counted, and committed
    literals = re.compile(r"'[^']*'")  # the phones and the hashes differ, the statements must not
    assert [literals.sub("?", sql) for sql in seen[0]] == [literals.sub("?", sql) for sql in seen[1]]
    assert len(seen[0]) == 4  # the read, then the transaction path: BEGIN, the try, COMMIT
    assert OutstandingToken.objects.count() == 0


def test_a_user_deleted_between_the_read_and_the_statement_logs_in_as_a_first_login():
    code = code_for()
    existing = User.objects.create_user(phone=PHONE)
    built = []

    def delete_then_build(user):
        if not built:  # what a staff member deleting the account in between would do
            User.objects.filter(pk=existing.pk).delete()
        built.append(user.pk)
        return rows_for(user)

    user = services.code_verify(phone=PHONE, code=code, login_rows=delete_then_build)
    assert built[0] == existing.pk and user.pk != existing.pk and built[1] == user.pk
    assert User.objects.get(phone=PHONE).pk == user.pk  # created again, as on a first login
    assert list(OutstandingToken.objects.values_list("user_id", flat=True)) == [user.pk]
    challenge = PhoneCode.objects.get()
    assert challenge.consumed_at is not None and challenge.attempts == 1  # the failed statement counted nothing


def test_a_disabled_user_is_refused_and_the_code_is_not_used():
    code = code_for()
    User.objects.create_user(phone=PHONE, is_active=False)
    answer = login(PHONE, code)
    assert answer.status_code == 400
    assert "disabled" in str(answer.json())
    assert PhoneCode.objects.get().consumed_at is None
    assert OutstandingToken.objects.count() == 0


def test_a_code_a_parallel_login_used_first_gets_the_answer_of_a_used_code(monkeypatch):
    """The read says the code matches; by the statement another login has used it."""
    code = code_for()
    User.objects.create_user(phone=PHONE)
    real = services._code_try_saving

    def used_meanwhile(**kwargs):
        PhoneCode.objects.update(consumed_at=kwargs["now"])
        return real(**kwargs)

    monkeypatch.setattr(services, "_code_try_saving", used_meanwhile)
    with pytest.raises(services.AuthenticationFailed, match="Wrong or expired"):
        services.code_verify(phone=PHONE, code=code, login_rows=rows_for)
    assert OutstandingToken.objects.count() == 0
    assert PhoneCode.objects.get().attempts == 0  # nothing counted: the code was no longer usable


def test_a_new_code_sent_in_between_takes_the_try_as_wrong_and_no_row_is_written(monkeypatch):
    """The read matched the old code; by the statement a newer code is the latest, so the try
    counts against that one, is wrong, and the token's row must not go in."""
    code = code_for()
    User.objects.create_user(phone=PHONE)
    real = services._code_try_saving

    def resent_meanwhile(**kwargs):
        PhoneCode.objects.create(
            phone=PHONE,
            code_hash=services.code_hash(phone=PHONE, code=f"{(int(code) + 1) % 10_000:04d}"),
            expires_at=kwargs["now"] + timedelta(minutes=5),
        )
        return real(**kwargs)

    monkeypatch.setattr(services, "_code_try_saving", resent_meanwhile)
    with pytest.raises(services.AuthenticationFailed, match="Wrong or expired"):
        services.code_verify(phone=PHONE, code=code, login_rows=rows_for)
    assert OutstandingToken.objects.count() == 0
    newest = PhoneCode.objects.order_by("-created_at").first()
    assert (newest.attempts, newest.consumed_at) == (1, None)
