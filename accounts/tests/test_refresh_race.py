"""A refresh token is single-use under concurrency (issue 19.3): the same token sent in parallel
gives exactly one new pair, the others a 401 with a message; logging out the winner leaves no
branch alive. Real threads with their own PostgreSQL connections, on committed rows."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import UserFactory
from tests.reliability.parallel import errors, run_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
PARALLEL = 4
ROUNDS = 5


def _refresh(token):
    def call():
        answer = APIClient().post(REFRESH, {"refresh": token}, format="json")
        return answer.status_code, answer.json()

    return call


def _alive(user) -> int:
    """Refresh tokens of the user that could still be used."""
    return OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True).count()


def test_one_refresh_token_sent_in_parallel_gives_exactly_one_new_pair():
    user = UserFactory()
    for _ in range(ROUNDS):
        token = str(RefreshToken.for_user(user))
        results = run_parallel([_refresh(token)] * PARALLEL)
        assert errors(results) == []
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [401] * (PARALLEL - 1), results
        for status, body in results:
            if status == 401:
                assert body == {"detail": "This refresh token has already been used."}
    # Each round left one live token: its winner's.
    assert _alive(user) == ROUNDS


def test_logging_out_the_winner_leaves_no_branch_alive():
    user = UserFactory()
    token = str(RefreshToken.for_user(user))
    results = run_parallel([_refresh(token)] * PARALLEL)
    assert errors(results) == []
    (winner,) = [body for status, body in results if status == 200]
    assert _alive(user) == 1

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {winner['token']}")
    assert client.post(LOGOUT, {"refresh": winner["refresh"]}, format="json").status_code == 205
    assert _alive(user) == 0
    assert APIClient().post(REFRESH, {"refresh": winner["refresh"]}, format="json").status_code == 401
