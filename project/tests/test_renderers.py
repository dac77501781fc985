"""project.renderers.JSONRenderer: the bytes DRF's JSONRenderer writes, for what an API returns."""

import datetime
import decimal
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from accounts.models import User
from project.renderers import JSONRenderer

UTC = datetime.UTC
SAMPLES = {
    "profile": [
        {
            "phone": "+79991234567",
            "my_refs": [{"phone": f"+7999000{n:04d}"} for n in range(100)],
            "my_inviter": None,
            "my_ref_code": "abc234",
            "created_at": datetime.datetime(2026, 11, 28, 3, 4, 5, 123456, tzinfo=UTC),
        }
    ],
    "datetimes": [
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=ZoneInfo("Europe/Moscow")),
        datetime.datetime(2026, 1, 2, 3, 4, 5),
        datetime.date(2026, 1, 2),
        datetime.time(3, 4, 5, 6),
        datetime.timedelta(hours=1, microseconds=5),
    ],
    "scalars": [0, -1, 2**63 - 1, 1.5, True, False, None, "", decimal.Decimal("1.25"), uuid.UUID(int=7)],
    "text": ["Привет", "emoji \U0001f600", 'quote " backslash \\ tab \t', "line\u2028para\u2029end", "\x00\x1f"],
    "keys": {1: "int", "s": {"nested": [1, [2, [3]]]}, None: "none", False: "bool"},
    "lazy": {"detail": gettext_lazy("Not found.")},
    "serializer data": ReturnDict({"a": ReturnList([1, 2], serializer=None)}, serializer=None),
    "tuple": {"t": (1, 2)},
    "big int": [2**70],
}


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
def test_it_writes_the_bytes_drf_writes(data):
    assert JSONRenderer().render(data, "application/json") == renderers.JSONRenderer().render(data, "application/json")


@pytest.mark.django_db
def test_a_queryset_is_written_as_drf_writes_it():
    User.objects.create_user(phone="+79990000041")
    data = {"phones": User.objects.values_list("phone", flat=True)}
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


@pytest.mark.parametrize("media_type", ["application/json; indent=4", "application/json; indent=0"])
def test_pretty_printing_is_drf_s(media_type):
    data = SAMPLES["profile"]
    assert JSONRenderer().render(data, media_type) == renderers.JSONRenderer().render(data, media_type)
    assert JSONRenderer().render(data, "application/json", {"indent": 2}) == renderers.JSONRenderer().render(
        data, "application/json", {"indent": 2}
    )


def test_what_drf_cannot_write_fails_as_in_drf():
    with pytest.raises(TypeError):
        renderers.JSONRenderer().render({"x": object()})
    with pytest.raises(TypeError):
        JSONRenderer().render({"x": object()})


def test_a_generator_is_written_as_drf_writes_it():
    def data():
        return {"squares": (n * n for n in range(4))}

    assert JSONRenderer().render(data()) == renderers.JSONRenderer().render(data()) == b'{"squares":[0,1,4,9]}'


def test_nothing_is_written_for_no_data():
    assert JSONRenderer().render(None) == b""


def test_the_api_answers_through_it(client):
    response = client.get("/api/v1/my_profile/")
    assert response.status_code == 401
    assert isinstance(response.accepted_renderer, JSONRenderer)
    assert response.content == b'{"detail":"Authentication credentials were not provided."}'
