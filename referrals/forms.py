"""Forms of the profile page. They parse input; the rules live in referrals.services."""

from django import forms
from django.utils.translation import gettext_lazy as _

from project.web import PageForm


class InviterForm(PageForm):
    my_inviter = forms.CharField(
        label=_("Your inviter's referral code"),
        max_length=64,
        help_text=_("6 letters and digits, as your inviter gave it to you. Capitals do not matter."),
        error_messages={"required": _("Enter your inviter's referral code.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )
