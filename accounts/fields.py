from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

from project.exceptions import ApplicationError

from .phones import PHONE_INPUT_MAX_LENGTH, phone_normalize


def validate_e164(value):
    if not (isinstance(value, str) and value.startswith("+") and value[1:].isdigit() and len(value) <= 16):
        raise ValidationError(_("Enter a valid phone number, e.g. +79991234567."), code="invalid_phone")


class PhoneField(models.CharField):
    """A phone number stored in E.164. Anything typed into a form, the admin or
    `createsuperuser` is normalised on clean(), so every spelling lands as one value."""

    default_validators = [validate_e164]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 16)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return value
        try:
            return phone_normalize(value)
        except ApplicationError:
            return value  # the validator reports it

    def formfield(self, **kwargs):
        # Room for national spellings such as "8 (999) 123-45-67".
        return super().formfield(**{**kwargs, "max_length": PHONE_INPUT_MAX_LENGTH})
