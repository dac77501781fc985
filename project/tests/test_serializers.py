"""project.serializers.StrictCharField: text inputs take JSON strings only."""

import pytest
from rest_framework import serializers

from project.serializers import StrictCharField


class Login(serializers.Serializer):
    phone = StrictCharField(max_length=8)


@pytest.mark.parametrize("value", [79991234, 1.5, True, ["1"], {"a": 1}])
def test_it_refuses_what_is_not_a_string(value):
    form = Login(data={"phone": value})
    assert not form.is_valid()
    assert form.errors["phone"] == ["Must be a string."]


def test_it_takes_a_string_within_its_length():
    assert Login(data={"phone": "12345"}).is_valid()
    assert not Login(data={"phone": "x" * 9}).is_valid()
