"""Forms of the login pages. They parse input; the rules live in accounts.services."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts.phones import PHONE_INPUT_MAX_LENGTH
from project.exceptions import RateLimited
from project.web import PageForm, request_ip

from .services import password_tries_clear, password_try_count


class PhoneForm(PageForm):
    phone = forms.CharField(
        label=_("Phone number"),
        max_length=PHONE_INPUT_MAX_LENGTH,
        help_text=_("Any spelling works, e.g. +7 999 123-45-67 or 8 999 123 45 67."),
        error_messages={"required": _("Enter a phone number.")},
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )


class CodeForm(PageForm):
    # Length and digits are checked by code_verify, so the page says what the API says.
    confirmation_code = forms.CharField(
        label=_("Confirmation code"),
        max_length=16,
        help_text=_("The 4 digits we sent you."),
        error_messages={"required": _("Enter the 4-digit code.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 6}),
    )


class AdminLoginForm(AdminAuthenticationForm):
    """Django's admin login (phone + password), with the tries counted first
    (accounts.services.password_try_count). A refused try names the cap and the wait, and
    the site answers it with a 429 (accounts.sites.AdminSite.login)."""

    rate_limited: RateLimited | None = None

    def clean(self):
        phone, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if phone and password:
            try:
                password_try_count(phone=phone, ip=request_ip(self.request))
            except RateLimited as exc:
                self.rate_limited = exc
                raise forms.ValidationError(exc.message, code="rate_limited") from exc
        cleaned = super().clean()
        password_tries_clear(phone=phone)
        return cleaned
