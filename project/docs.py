"""Files of the pages that are not our templates (the API docs, the admin). Used by project/urls.py."""

import functools
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET

# Redoc's bundle shows the "API docs by Redocly" badge with an image from Redocly's CDN (no
# option turns it off); the page is served with that one URL pointing at our own copy instead.
REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def _redoc_bundle() -> bytes:
    text = Path(finders.find(REDOC_BUNDLE)).read_text(encoding="utf-8")
    if REDOC_CDN_LOGO not in text:
        raise RuntimeError(f"{REDOC_BUNDLE} no longer names {REDOC_CDN_LOGO}: check project/docs.py")
    return text.replace(REDOC_CDN_LOGO, static("img/redoc-logo.svg")).encode()


@require_GET
def redoc_bundle(request):
    """drf-spectacular-sidecar's Redoc bundle, its CDN logo replaced by ours (static/img/)."""
    response = HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_GET
def favicon(request):
    """/favicon.ico, which browsers ask for on pages without an icon link (the admin, Swagger UI,
    Redoc): our icon. Resolved per request: the static file's hashed name is known only then."""
    return redirect(static("img/favicon.svg"), permanent=True)
