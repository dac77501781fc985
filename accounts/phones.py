"""Phone numbers: one spelling (E.164) for every way a person may type one."""

from django.conf import settings
from phonenumber_field.phonenumber import to_python

from project.exceptions import ApplicationError

# Longer input is not a phone number; refuse it before the parser sees it.
PHONE_INPUT_MAX_LENGTH = 32


def phone_normalize(raw, *, field="phone") -> str:
    """Return the E.164 form of `raw` or raise ApplicationError naming `field`.

    "+7 (999) 123-45-67", "89991234567" and "+79991234567" are the same number
    (default region: PHONE_DEFAULT_REGION).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ApplicationError("Enter a phone number.", field=field)
    if len(raw) > PHONE_INPUT_MAX_LENGTH:
        raise ApplicationError("Enter a valid phone number.", field=field)
    number = to_python(raw.strip(), region=settings.PHONE_DEFAULT_REGION)
    if number is None or not number.is_valid():
        raise ApplicationError("Enter a valid phone number, e.g. +79991234567.", field=field)
    return number.as_e164
