"""Whatever the bytes, a 4xx with a message, never a 500: oversized bodies, wrong content
types, non-UTF-8, huge phone strings, JSON that is not an object. Every JSON endpoint, both
through the test client and, for the body size, through gunicorn as a client would send it.
"""

import json

import httpx
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

# The JSON endpoints with a body; {pk} is filled with the staff user's own id.
ENDPOINTS = [
    ("post", "/api/v1/auth/signup/"),
    ("post", "/api/v1/auth/token/"),
    ("post", "/api/v1/auth/token/refresh/"),
    ("post", "/api/v1/auth/logout/"),
    ("patch", "/api/v1/my_profile/"),
    ("patch", "/api/v1/all_profiles/{pk}/"),
]
HUGE = "9" * 1_000_000


@pytest.fixture
def client(staff_api):
    """A raw Django client (exact bytes, exact content type) carrying the staff JWT."""
    from rest_framework_simplejwt.tokens import AccessToken

    raw = Client(raise_request_exception=True)
    raw.auth = f"Bearer {AccessToken.for_user(staff_api.user)}"
    raw.pk = staff_api.user.pk
    return raw


def send(client, method, path, body: bytes, content_type="application/json"):
    path = path.format(pk=client.pk)
    return getattr(client, method)(path, body, content_type=content_type, HTTP_AUTHORIZATION=client.auth)


def assert_4xx_with_message(answer, *allowed):
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.content[:200])
    if allowed:
        assert answer.status_code in allowed
    assert answer["Content-Type"].startswith("application/json")
    assert answer.json()


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"[]", b'"phone"', b"1", b"null", b"true", b'[{"phone": "+79991234567"}]'],
    ids=["list", "string", "number", "null", "bool", "list-of-object"],
)
def test_json_that_is_not_an_object_is_a_400(client, method, path, body):
    assert_4xx_with_message(send(client, method, path, body), 400)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b'{"phone": "\xff\xfe"}', b"\xff\xfe\xfd", b'{"phone": "+7999\xc3\x28"}', b"{", b'{"phone": "\\ud800"}'],
    ids=["latin1-in-string", "binary", "bad-utf8-sequence", "truncated", "lone-surrogate"],
)
def test_bytes_that_are_not_utf8_json_are_a_400(client, method, path, body):
    assert_4xx_with_message(send(client, method, path, body))


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", ""],
)
def test_a_content_type_other_than_json_is_a_415(client, method, path, content_type):
    answer = send(client, method, path, b"phone=%2B79991234567", content_type=content_type)
    assert_4xx_with_message(answer, 415)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_an_oversized_body_is_a_json_413(client, method, path, settings):
    body = json.dumps({"phone": "1" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}).encode()
    answer = send(client, method, path, body)
    assert_4xx_with_message(answer, 413)
    assert "too large" in answer.json()["detail"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"phone": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001],
    ids=["nested-lists", "nested-objects"],
)
def test_deeply_nested_json_is_a_json_400(client, method, path, body):
    answer = send(client, method, path, body)
    assert_4xx_with_message(answer, 400)
    assert "nested" in answer.json()["detail"]


# Every API path, with a method that reaches its view. (A path that matches no route is the
# JSON 404 whatever its query: nothing reads the query there.)
API_PATHS = [*ENDPOINTS, ("get", "/api/v1/my_profile/"), ("get", "/api/v1/all_profiles/")]


@pytest.mark.parametrize(("method", "path"), API_PATHS)
def test_more_query_fields_than_django_allows_is_a_json_400(client, method, path, settings):
    query = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    path = f"{path.format(pk=client.pk)}?{query}"
    if method == "get":
        answer = client.get(path, HTTP_AUTHORIZATION=client.auth)
    else:
        answer = getattr(client, method)(path, b"{}", content_type="application/json", HTTP_AUTHORIZATION=client.auth)
    assert_4xx_with_message(answer, 400)
    assert "Too many" in answer.json()["detail"]


def test_an_html_page_answers_an_oversized_body_with_413(settings):
    body = b"phone=" + b"1" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    answer = Client().post("/", body, content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 413


@pytest.mark.parametrize("field", ["phone", "confirmation_code"])
def test_a_huge_phone_or_code_string_is_a_400_naming_the_field(client, field):
    body = {"phone": "+79991234567", "confirmation_code": "1234", field: HUGE[:500_000]}
    answer = send(client, "post", "/api/v1/auth/token/", json.dumps(body).encode())
    assert_4xx_with_message(answer, 400)
    assert field in answer.json()


@pytest.mark.parametrize(
    "phone",
    ["+" + "7" * 64, "+7\x00999", "+7 999 ‮123", "\t\n", "+7(999)123-45-67" * 4, "\uff11\uff12\uff13"],
)
def test_strange_phone_strings_are_a_400(client, phone):
    answer = send(client, "post", "/api/v1/auth/signup/", json.dumps({"phone": phone}).encode())
    assert_4xx_with_message(answer, 400)


@pytest.mark.parametrize("path", ["/", "/submit/", "/my_profile/", "/logout/"])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"phone=%FF%FE", "application/x-www-form-urlencoded"),
        (b"phone=" + b"9" * 100_000, "application/x-www-form-urlencoded"),
        (b"\xff\xfe\xfd", "application/x-www-form-urlencoded; charset=utf-8"),
        (b'{"phone": []}', "application/json"),
    ],
    ids=["bad-percent-utf8", "huge-field", "binary", "json"],
)
def test_html_forms_never_answer_500_to_strange_bodies(path, body, content_type):
    client = Client(enforce_csrf_checks=False, raise_request_exception=True)
    answer = client.post(path, body, content_type=content_type)
    assert answer.status_code < 500


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_gunicorn_answers_oversized_and_malformed_bodies_with_a_4xx(app_server):
    web = app_server()
    url = web.url + "/api/v1/auth/signup/"
    big = b'{"phone": "' + b"1" * 5_000_000 + b'"}'
    answers = {
        "oversized": httpx.post(url, content=big, headers={"Content-Type": "application/json"}, timeout=30),
        "chunked oversized": httpx.post(
            url,
            content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
            headers={"Content-Type": "application/json"},
            timeout=30,
        ),
        "non-utf8": httpx.post(url, content=b"\xff\xfe", headers={"Content-Type": "application/json"}, timeout=10),
        "text": httpx.post(url, content=b"phone", headers={"Content-Type": "text/plain"}, timeout=10),
        "array": httpx.post(url, json=[], timeout=10),
    }
    statuses = {name: a.status_code for name, a in answers.items()}
    assert all(400 <= s < 500 for s in statuses.values()), statuses
    assert "Internal Server Error" not in web.logs()
