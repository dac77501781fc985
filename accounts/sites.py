"""The Django admin site: it needs the password.

A staff member logged in on the phone-code pages has a session, but the admin opens only for
a session made by Django's admin login with the password backend (issue 19.2). The site is
installed as the default one (project.apps.AdminConfig), so every app's admin.py registers on it.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.exceptions import NON_FIELD_ERRORS
from django.template.response import TemplateResponse
from django.urls import path

from project.activity import activity_daily
from project.charts import line_chart

from .authentication import PASSWORD_BACKEND
from .forms import AdminLoginForm


class AdminSite(admin.AdminSite):
    login_form = AdminLoginForm
    # The index with a link to the activity charts.
    index_template = "admin/referral_index.html"

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

    def get_urls(self):
        return [path("charts/", self.admin_view(self.charts_view), name="charts"), *super().get_urls()]

    def charts_view(self, request):
        """The last 30 days, one point a day, for staff (any staff member the admin lets in):
        signups and logins, codes sent and refused, delivery failures, referrals by status."""
        activity = activity_daily(days=30)
        days, series = activity.days, activity.series

        def picked(*keys):
            return [(series[key].name, series[key].values) for key in keys]

        charts = [
            line_chart(title="Signups and logins", days=days, series=picked("signups", "logins")),
            line_chart(title="Login codes sent and refused", days=days, series=picked("codes_sent", "codes_refused")),
            line_chart(title="Delivery failures", days=days, series=picked("delivery_failures")),
            line_chart(
                title="Referrals by status",
                days=days,
                series=picked("referrals_approved", "referrals_flagged", "referrals_rejected"),
            ),
        ]
        context = {
            **self.each_context(request),
            "title": "Activity, last 30 days",
            "charts": charts,
            "first_day": days[0],
            "last_day": days[-1],
            "time_zone": settings.TIME_ZONE,
        }
        return TemplateResponse(request, "admin/charts.html", context)
