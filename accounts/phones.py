"""Phone numbers: one spelling (E.164) for every way a person may type one."""

import functools

import phonenumbers
from django.conf import settings
from django.utils.translation import gettext as _
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
        raise ApplicationError(_("Enter a phone number."), field=field)
    if len(raw) > PHONE_INPUT_MAX_LENGTH:
        raise ApplicationError(_("Enter a valid phone number."), field=field)
    e164 = _e164(raw.strip(), settings.PHONE_DEFAULT_REGION)
    if e164 is None:
        raise ApplicationError(_("Enter a valid phone number, e.g. +79991234567."), field=field)
    return e164


@functools.lru_cache(maxsize=10_000)
def _e164(raw: str, region: str) -> str | None:
    """Parsing is the slow part, and a request meets the same number several times: the API
    normalises it, then PhoneField.to_python again for every lookup and save."""
    number = to_python(raw, region=region)
    return number.as_e164 if number is not None and number.is_valid() else None


@functools.lru_cache(maxsize=10_000)
def phone_kind(e164: str) -> tuple[str, str]:
    """The country (ISO code, "" when none) and the kind of number (a name of
    settings.NUMBER_TYPE_NAMES: "mobile", "premium-rate"...) of a valid E.164 number, from
    libphonenumber's offline metadata."""
    number = phonenumbers.parse(e164)
    kind = phonenumbers.number_type(number)
    names = {value: name for name, value in settings.NUMBER_TYPE_NAMES.items()}
    return phonenumbers.region_code_for_number(number) or "", names.get(kind, "unknown")


def phone_display(e164) -> str:
    """An E.164 phone as people write it, "+7 999 123-45-67" (libphonenumber's INTERNATIONAL
    format), for the pages and the admin; the API keeps E.164. Anything unparsable is shown as is."""
    if not e164:
        return e164 or ""
    try:
        number = phonenumbers.parse(str(e164), None)
    except phonenumbers.NumberParseException:
        return str(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
