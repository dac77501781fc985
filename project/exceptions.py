"""The project's own exceptions, and the one place that turns them into HTTP answers.

Services raise these; API views let them through and `api_exception_handler` answers;
HTML views catch `ApplicationError` and show `message` next to the field.
"""

import logging
import math

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

# A database that is restarting or unreachable is a moment's outage, not a bug in the request:
# the client is told to come back (503 + Retry-After) instead of getting a 500.
DATABASE_UNAVAILABLE_RETRY_S = 2


class ApplicationError(Exception):
    """A rule said no. `field` names the input it is about (None: the whole request); `reason`
    is a short machine-readable name of the rule (refusal records and metrics count by it)."""

    status_code = 400

    def __init__(self, message, *, field=None, reason=None):
        # Made text here, in the request's language (a lazy translation is resolved now).
        message = str(message)
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason

    def as_data(self):
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message}


class NotFoundError(ApplicationError):
    """The thing the request names does not exist."""

    status_code = 404


class ConflictError(ApplicationError):
    """The thing exists but is not in a state that allows this (e.g. deciding a decided referral)."""

    status_code = 409


class RateLimited(ApplicationError):
    status_code = 429

    def __init__(self, message, *, retry_after, field=None, reason=None):
        super().__init__(message, field=field, reason=reason)
        self.retry_after = max(1, math.ceil(retry_after))


class ServiceUnavailable(RateLimited):
    """The service will not do this for anyone until Retry-After (the SMS budget is spent)."""

    status_code = 503


class AuthenticationFailed(ApplicationError):
    """Wrong, expired, burned or used code: one answer for all, so nothing leaks."""

    status_code = 400


class NotAuthenticated(ApplicationError):
    """The credential itself is spent (a refresh token already used): log in again."""

    status_code = 401


class Forbidden(ApplicationError):
    """The caller is known but a rule forbids them this (a staff user on a superuser)."""

    status_code = 403


class NotFound(ApplicationError):
    """What the request names does not exist (any more)."""

    status_code = 404


# Django's own refusals of a request it will not read (DATA_UPLOAD_MAX_MEMORY_SIZE,
# DATA_UPLOAD_MAX_NUMBER_FIELDS): the status and the message an API client gets for each.
def _request_refusal(exc) -> tuple[int, str] | None:
    if isinstance(exc, RequestDataTooBig):
        return 413, _("The request body is too large.")
    if isinstance(exc, TooManyFieldsSent):
        return 400, _("Too many fields in the query string or the form.")
    if isinstance(exc, SuspiciousOperation):
        return 400, _("Bad request.")
    return None


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, NotAuthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        data = exc.as_data()
        if isinstance(exc, RateLimited):
            data = {**data, "retry_after": exc.retry_after}
        return Response(data, status=exc.status_code, headers=headers)
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        return Response(
            {"detail": _("The service is briefly unavailable. Try again in a moment.")},
            status=503,
            headers={"Retry-After": str(DATABASE_UNAVAILABLE_RETRY_S)},
        )
    refusal = _request_refusal(exc)
    if refusal is not None:
        status, message = refusal
        return Response({"detail": message}, status=status)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    return exception_handler(exc, context)


def not_found(request, exception):
    """handler404: an API client gets DRF's JSON shape for a path that matches no route
    (e.g. /api/v1/all_profiles/abc/), browsers the HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return page_not_found(request, exception)


def bad_request(request, exception):
    """handler400: Django's own 400s (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, more fields than
    DATA_UPLOAD_MAX_NUMBER_FIELDS, a bad Host) as JSON under /api/; a body over the limit is a
    413 on the pages too."""
    status, message = _request_refusal(exception) or (400, _("Bad request."))
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    if status == 413:
        return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
    return django_bad_request(request, exception)
