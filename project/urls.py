from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts.urls import api_urlpatterns as accounts_api
from accounts.urls import urlpatterns as accounts_pages
from referrals.urls import api_urlpatterns as referrals_api
from referrals.urls import urlpatterns as referrals_pages

from . import docs, health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(accounts_api + referrals_api)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, so the CSP needs no inline script.
    path("swagger/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger"),
    # Our template drops the Google Fonts links of drf-spectacular's and loads Redoc's bundle with
    # its CDN logo replaced by ours (project/docs.py): no CDN, works offline.
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="referrals/redoc.html"),
        name="redoc",
    ),
    path("redoc/redoc.standalone.js", docs.redoc_bundle, name="redoc-bundle"),
    # Pages without an icon link of their own (the admin, Swagger UI, Redoc): browsers ask for this.
    path("favicon.ico", docs.favicon),
    path("health/", health.health, name="health"),
    path("ready/", health.ready, name="ready"),
    # Prometheus' default path, no slash; only for METRICS_ALLOWED (project/metrics.py).
    path("metrics", metrics.metrics, name="metrics"),
    # The HTML pages (session login): /, /submit/, /my_profile/, /logout/.
    path("", include(accounts_pages + referrals_pages)),
    # The pages' language switch: Django's set_language (POST), kept in the django_language cookie.
    path("i18n/", include("django.conf.urls.i18n")),
]

# JSON 404s and Django's own 400s (413 for a body over the limit) under /api/ (project/exceptions.py).
handler400 = "project.exceptions.bad_request"
handler404 = "project.exceptions.not_found"
