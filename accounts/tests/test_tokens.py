import pytest

pytestmark = pytest.mark.django_db

REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"


@pytest.fixture
def tokens(api, settings):
    settings.OTP_FAKE_DELIVERY = True
    code = api.post("/api/v1/auth/signup/", {"phone": "+79991234567"}, format="json").json()["confirmation_code"]
    return api.post("/api/v1/auth/token/", {"phone": "+79991234567", "confirmation_code": code}, format="json").json()


def test_refresh_rotates_and_the_old_refresh_token_is_blacklisted(api, tokens):
    answer = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert answer.status_code == 200
    assert set(answer.json()) == {"token", "refresh"}
    assert answer.json()["refresh"] != tokens["refresh"]
    reused = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json() == {"detail": "This refresh token has already been used."}
    assert reused["WWW-Authenticate"].startswith("Bearer")


def test_logout_blacklists_the_refresh_token(api, tokens):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['token']}")
    assert api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json").status_code == 205
    after = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert after.status_code == 401


def test_logout_needs_a_logged_in_user(api, tokens):
    assert api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json").status_code == 401


def test_logout_refuses_someone_elses_refresh_token(auth_api, tokens):
    answer = auth_api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")
    assert answer.status_code == 400


@pytest.mark.parametrize("refresh", ["", "garbage", "a.b.c", None, 5])
def test_a_bad_refresh_token_is_a_400(api, refresh):
    answer = api.post(REFRESH, {"refresh": refresh}, format="json")
    assert answer.status_code == 400


def test_an_access_token_is_not_a_refresh_token(api, tokens):
    answer = api.post(REFRESH, {"refresh": tokens["token"]}, format="json")
    assert answer.status_code == 400


def test_the_access_token_lives_fifteen_minutes_by_default(settings):
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds() == 15 * 60


def test_the_refresh_token_of_a_disabled_or_deleted_user_is_a_400(api, tokens):
    from accounts.models import User

    User.objects.filter(phone="+79991234567").update(is_active=False)
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 400
    User.objects.filter(phone="+79991234567").delete()
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 400
