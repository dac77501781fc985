import copy

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, lists and objects instead of str()-ing them.

    Used for every text input of the API: {"phone": 79991234567} is a client bug, a 400.
    """

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# An input serializer of plain fields: each instance gets shallow copies of the declared fields
# where DRF deep-copies them, which runs every field's __init__ again (about 2% of a login's
# CPU, bench/). A plain field keeps nothing per instance but what bind() sets on its copy; a
# nested serializer or a field with a child would share state, so neither is allowed here.
# (A comment, not a docstring: drf-spectacular would print it on every input in the schema.)
class FlatSerializer(serializers.Serializer):
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, field in cls._declared_fields.items():
            if isinstance(field, serializers.BaseSerializer) or hasattr(field, "child"):
                raise TypeError(f"{cls.__qualname__}.{name}: FlatSerializer takes plain fields only")

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}
