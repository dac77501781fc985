"""Forms of the login pages. They parse input; the rules live in accounts.services."""

from django import forms

from accounts.phones import PHONE_INPUT_MAX_LENGTH
from project.exceptions import ApplicationError


class ServiceErrorsMixin:
    """Puts a service's ApplicationError next to the field it names (or above the form)."""

    def add_service_error(self, exc: ApplicationError) -> None:
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class PhoneForm(ServiceErrorsMixin, forms.Form):
    phone = forms.CharField(
        label="Phone number",
        max_length=PHONE_INPUT_MAX_LENGTH,
        help_text="Any spelling works, e.g. +7 999 123-45-67 or 8 999 123 45 67.",
        error_messages={"required": "Enter a phone number."},
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel", "autofocus": True}),
    )


class CodeForm(ServiceErrorsMixin, forms.Form):
    # Length and digits are checked by code_verify, so the page says what the API says.
    confirmation_code = forms.CharField(
        label="Confirmation code",
        max_length=16,
        help_text="The 4 digits we sent you.",
        error_messages={"required": "Enter the 4-digit code."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "size": 6}
        ),
    )
