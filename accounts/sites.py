"""The Django admin site: it needs the password.

A staff member logged in on the phone-code pages has a session, but the admin opens only for
a session made by Django's admin login with the password backend (issue 19.2). The site is
installed as the default one (project.apps.AdminConfig), so every app's admin.py registers on it.
"""

from django.contrib import admin
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.exceptions import NON_FIELD_ERRORS

from .authentication import PASSWORD_BACKEND
from .forms import AdminLoginForm


class AdminSite(admin.AdminSite):
    login_form = AdminLoginForm

    def has_permission(self, request):
        return super().has_permission(request) and request.session.get(BACKEND_SESSION_KEY) == PASSWORD_BACKEND

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        refused = getattr(form, "rate_limited", None)
        if refused is not None and form.has_error(NON_FIELD_ERRORS, "rate_limited"):
            response.status_code = refused.status_code
            response["Retry-After"] = str(refused.retry_after)
        return response
