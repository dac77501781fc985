"""project.negotiation: DRF's answer for every Accept header, the common ones without its work."""

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from project.negotiation import ContentNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/*",
    "text/html, application/json;q=0.9",
    "text/html",
    "application/xml",
]


def _answer(negotiation, renderers, accept, path="/api/v1/auth/signup/"):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(path, **headers))
    try:
        renderer, media_type = negotiation().select_renderer(request, renderers)
    except Exception as exc:
        return type(exc).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize(
    "renderers", [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()]], ids=["json", "both"]
)
def test_it_answers_what_drf_answers(accept, renderers):
    assert _answer(ContentNegotiation, renderers, accept) == _answer(DefaultContentNegotiation, renderers, accept)


@pytest.mark.parametrize("path", ["/api/v1/auth/signup/?format=json", "/api/v1/auth/signup/?format=api"])
def test_a_format_in_the_query_goes_through_drf(path):
    renderers = [JSONRenderer()]
    assert _answer(ContentNegotiation, renderers, None, path) == _answer(
        DefaultContentNegotiation, renderers, None, path
    )


def test_a_request_that_accepts_no_json_is_refused_with_406(client):
    response = client.post(
        "/api/v1/auth/signup/", {"phone": "+79990000001"}, "application/json", HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 406
    assert response.json() == {"detail": "Could not satisfy the request Accept header."}
