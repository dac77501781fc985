"""The OpenAPI 3 schema and its two viewers, served without any CDN."""

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

ROOT = Path(settings.BASE_DIR)
OPERATIONS = {
    ("/api/v1/my_profile/", "get"),
    ("/api/v1/my_profile/", "patch"),
    ("/api/v1/all_profiles/", "get"),
    ("/api/v1/all_profiles/{id}/", "get"),
    ("/api/v1/all_profiles/{id}/", "patch"),
    ("/api/v1/all_profiles/{id}/", "delete"),
}


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load((ROOT / "schema.yaml").read_text())


def test_the_schema_endpoint_serves_openapi_3(client):
    answer = client.get("/api/schema/")
    assert answer.status_code == 200
    served = yaml.safe_load(answer.content)
    assert served["openapi"].startswith("3.")
    assert {path for path, _ in OPERATIONS} <= set(served["paths"])


@pytest.mark.parametrize("page", ["/swagger/", "/redoc/"])
def test_the_docs_pages_load_only_local_static_files(client, page):
    answer = client.get(page)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html), "a CDN URL in the page"
    assert "cdn" not in html.lower()
    assets = re.findall(r"(?:src|href)\s*=\s*\"([^\"]+\.(?:js|css|png))\"", html)
    assert assets, "the page loads no script"
    for url in assets:
        if url == "/redoc/redoc.standalone.js":  # Redoc's bundle with our logo (project/docs.py)
            continue
        assert url.startswith(settings.STATIC_URL), url
        assert finders.find(url.removeprefix(settings.STATIC_URL)), f"{url} is not a static file"


def test_redocs_bundle_shows_our_own_logo_not_the_cdns(client):
    answer = client.get("/redoc/redoc.standalone.js")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/javascript")
    bundle = b"".join(answer.streaming_content) if answer.streaming else answer.content
    assert b"cdn.redoc.ly" not in bundle
    logo = f"{settings.STATIC_URL}img/redoc-logo.svg"
    assert f'src:"{logo}"'.encode() in bundle
    assert finders.find("img/redoc-logo.svg")


def test_the_committed_schema_is_what_the_code_generates(tmp_path):
    generated = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    assert generated.read_text() == (ROOT / "schema.yaml").read_text(), "run `make schema` and commit schema.yaml"


def test_the_schema_declares_the_bearer_scheme(schema):
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["jwtAuth"].items()


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_every_profile_operation_documents_bearer_auth_and_its_answers(schema, path, method):
    operation = schema["paths"][path][method]
    assert operation["security"] == [{"jwtAuth": []}]
    codes = set(operation["responses"])
    assert "401" in codes
    assert codes & {"200", "204"}
    if path.startswith("/api/v1/all_profiles/"):
        assert "403" in codes
    if method == "patch":
        assert "400" in codes
        assert operation["requestBody"]["content"]["application/json"]["schema"]
    for code, response in operation["responses"].items():
        if code != "204":
            assert response["content"]["application/json"]["schema"], (code, response)


def test_the_my_profile_answer_is_documented_as_the_v1_list(schema):
    answer = schema["paths"]["/api/v1/my_profile/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"]["type"] == "array"
    profile = schema["components"]["schemas"][answer["schema"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(profile["properties"]) == {"phone", "my_refs", "my_inviter", "my_ref_code", "created_at"}
    assert profile["properties"]["my_inviter"]["nullable"] is True


def test_the_inviter_error_is_documented_in_the_drf_shape(schema):
    error = schema["paths"]["/api/v1/my_profile/"]["patch"]["responses"]["400"]["content"]["application/json"]
    component = schema["components"]["schemas"][error["schema"]["$ref"].rsplit("/", 1)[1]]
    assert component["properties"]["my_inviter"] == {"type": "array", "items": {"type": "string"}}


def test_every_api_operation_documents_djangos_own_400_and_a_body_over_the_limit_as_413(schema):
    """Too many query fields is a 400 on every path, a body over the limit a 413 on every
    operation that takes one: both JSON {"detail"} (issue 24.3)."""
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            assert "400" in responses, (path, method)
            assert responses["400"]["content"]["application/json"]["schema"], (path, method)
            if "requestBody" in operation:
                assert "413" in responses, (path, method)
                assert responses["413"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }


def test_the_refresh_operation_documents_the_401_of_a_used_token(schema):
    assert "401" in schema["paths"]["/api/v1/auth/token/refresh/"]["post"]["responses"]
