"""The ceiling: the cheapest Django JSON answer, served by a second gunicorn on the same settings.

Every endpoint's requests/s is divided by this one's, measured right next to it, so the ratio says
how much of the budget the endpoint's own work takes (routing, auth, queries, JSON), whatever the
machine's speed. Only the benchmark serves it (DJANGO_SETTINGS_MODULE=bench.ceiling).
"""

from django.http import JsonResponse
from django.urls import path

from project.settings import *  # noqa: F403 (the same settings, middleware included)


def ceiling_view(request):
    return JsonResponse({"status": "ok"})


ROOT_URLCONF = "bench.ceiling"
urlpatterns = [path("ceiling/", ceiling_view)]
