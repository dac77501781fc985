"""project.serializers.FlatSerializer: DRF's validation, with its fields copied cheaply."""

import pytest
from rest_framework import serializers

from project.serializers import FlatSerializer, StrictCharField


class Login(FlatSerializer):
    phone = StrictCharField(max_length=8)
    remember = serializers.BooleanField(required=False)


def test_each_instance_validates_with_fields_of_its_own():
    first, second = Login(data={"phone": "12345"}), Login(data={"phone": "x" * 9, "remember": "maybe"})
    assert first.is_valid() and first.validated_data == {"phone": "12345"}
    assert not second.is_valid()
    assert set(second.errors) == {"phone", "remember"}
    assert first.fields["phone"] is not second.fields["phone"]
    assert first.fields["phone"].parent is first and second.fields["phone"].parent is second
    declared = Login._declared_fields["phone"]
    assert declared.field_name is None and declared.parent is None  # the class's own stays unbound


def test_it_refuses_nested_serializers_and_fields_with_a_child():
    with pytest.raises(TypeError, match="plain fields only"):

        class Nested(FlatSerializer):
            login = Login()

    with pytest.raises(TypeError, match="plain fields only"):

        class Listed(FlatSerializer):
            phones = serializers.ListField(child=StrictCharField())
