from django.utils.translation import gettext_lazy
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, lists and objects instead of str()-ing them.

    Used for every text input of the API: {"phone": 79991234567} is a client bug, a 400.
    """

    default_error_messages = {"invalid": gettext_lazy("Must be a string.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
