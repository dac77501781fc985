"""Forms of the login pages. They parse input; the rules live in accounts.services."""

from django import forms

from accounts.phones import PHONE_INPUT_MAX_LENGTH
from project.web import PageForm


class PhoneForm(PageForm):
    phone = forms.CharField(
        label="Phone number",
        max_length=PHONE_INPUT_MAX_LENGTH,
        help_text="Any spelling works, e.g. +7 999 123-45-67 or 8 999 123 45 67.",
        error_messages={"required": "Enter a phone number."},
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )


class CodeForm(PageForm):
    # Length and digits are checked by code_verify, so the page says what the API says.
    confirmation_code = forms.CharField(
        label="Confirmation code",
        max_length=16,
        help_text="The 4 digits we sent you.",
        error_messages={"required": "Enter the 4-digit code."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 6}),
    )
