"""Web helpers both apps' doors use: the client's address, the API's input parsing and error
shapes, and the HTML pages' decorator and form base. Parsing and presenting only: the rules
live in the services."""

import ipaddress
from functools import wraps

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from .exceptions import ApplicationError

# --- the client's address --------------------------------------------------------------------


def _address(text: str):
    """`text` as an address (an IPv4-mapped IPv6 one as its IPv4 address), or None."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def client_ip(*, remote_addr: str | None, forwarded_for: str | None) -> str | None:
    """The client's address. X-Forwarded-For counts only when the peer is a trusted proxy;
    then the right-most address that is not itself a trusted proxy is the client. A hop that is
    not an address (a proxy's bad header) gives the peer's own address: the request is still
    counted under someone. None only when the peer's own address is unusable too (the services
    count those under one key of their own)."""
    peer = _address(remote_addr or "")
    if peer is None:
        return None
    trusted = {address for address in map(_address, settings.TRUSTED_PROXIES) if address is not None}
    if peer in trusted and forwarded_for:
        for hop in reversed(forwarded_for.split(",")):
            if not hop.strip():
                continue
            address = _address(hop)
            if address is None:
                break
            if address not in trusted:
                return str(address)
    return str(peer)


def request_ip(request) -> str | None:
    """client_ip of a Django request; used by the API and the pages alike."""
    meta = request.META
    return client_ip(remote_addr=meta.get("REMOTE_ADDR"), forwarded_for=meta.get("HTTP_X_FORWARDED_FOR"))


# --- the API ---------------------------------------------------------------------------------

ErrorSerializer = inline_serializer("Error", {"detail": serializers.CharField()})


def validation_error_schema(name, *fields):
    """The 400 shape: messages per field, present only for the fields that failed; a body that
    is not a JSON object gives non_field_errors, one that is not JSON at all a detail."""
    messages = {f: serializers.ListField(child=serializers.CharField(), required=False) for f in fields}
    messages["non_field_errors"] = serializers.ListField(child=serializers.CharField(), required=False)
    messages["detail"] = serializers.CharField(required=False)
    return inline_serializer(name, messages)


def api_input(serializer_class, request):
    """Validate the body; anything that is not a JSON object is a 400 with a message."""
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": [_("Send a JSON object.")]})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- the HTML pages --------------------------------------------------------------------------

# The pages load only their own CSS and JS: no inline script or style, no third party.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page(view):
    """An HTML page: strict CSP, never cached (pages show codes and phone numbers)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return never_cache(require_http_methods(["GET", "HEAD", "POST"])(wrapper))


class PageForm(forms.Form):
    """A form of the HTML pages: labels without a colon, and service errors shown in place."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_service_error(self, exc: ApplicationError) -> None:
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)
