"""The login pages: / (phone) -> /submit/ (code) -> session login; /logout/.

Thin doors into accounts.services, like the API: the same rules, the same messages.
The browser logs in with a session; the API with a JWT. Neither opens the other.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from project.exceptions import ApplicationError, AuthenticationFailed, RateLimited
from project.web import page, request_ip

from .authentication import PHONE_CODE_BACKEND
from .forms import CodeForm, PhoneForm
from .phones import phone_display
from .services import code_request, code_tries_left, code_verify

# The phone waiting for its code, and where to go after login (set by login_required's ?next=).
SESSION_PHONE = "login_phone"
SESSION_NEXT = "login_next"
# Fake delivery only: the code shown on the code page, kept until login so that a wrong try's
# page still shows it (a flash message would be gone by then).
SESSION_FAKE_CODE = "login_fake_code"
# Users log in by code, not password: the session names the code's own backend, which never
# opens /admin/ (that needs the password backend; accounts.sites).
SESSION_BACKEND = PHONE_CODE_BACKEND


def rate_limited_text(exc: RateLimited) -> str:
    """The service's message, plus how long to wait when it does not say so itself."""
    if any(ch.isdigit() for ch in exc.message):
        return exc.message
    minutes, seconds = divmod(exc.retry_after, 60)
    if minutes:
        wait = _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": seconds}
    else:
        wait = _("%(seconds)d s") % {"seconds": seconds}
    return _("%(message)s Wait %(wait)s.") % {"message": exc.message, "wait": wait}


def _safe_next(request, url) -> str | None:
    """`url` when it points back into this site, else None (no open redirect)."""
    hosts = {request.get_host()}
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts=hosts, require_https=request.is_secure()):
        return url
    return None


def _code_sent(request, result) -> None:
    request.session[SESSION_PHONE] = result.phone
    messages.success(request, _("We have sent a code to %(phone)s.") % {"phone": phone_display(result.phone)})
    if settings.OTP_FAKE_DELIVERY:
        request.session[SESSION_FAKE_CODE] = result.code
    else:
        request.session.pop(SESSION_FAKE_CODE, None)


def wrong_code_text(exc: AuthenticationFailed, *, tries_left: int) -> str:
    """A wrong code that still works says how many tries are left; only a spent one (or none)
    asks for a new code, as the service's message does."""
    if tries_left > 0:
        return ngettext(
            "Wrong code. You can try %(count)d more time.", "Wrong code. You can try %(count)d more times.", tries_left
        ) % {"count": tries_left}
    return exc.message


@page
def home(request):
    next_url = _safe_next(request, request.GET.get("next"))
    status = 200
    if request.method == "POST":
        form = PhoneForm(request.POST)
        if form.is_valid():
            try:
                result = code_request(phone=form.cleaned_data["phone"], ip=request_ip(request))
            except RateLimited as exc:
                form.add_error("phone", rate_limited_text(exc))
                status = exc.status_code  # 429, or 503 for the spent SMS budget
            except ApplicationError as exc:
                form.add_service_error(exc)
                status = 400
            else:
                _code_sent(request, result)
                if next_url:
                    request.session[SESSION_NEXT] = next_url
                return redirect("code-submit")
        else:
            status = 400
    else:
        form = PhoneForm()
    context = {"form": form, "next": next_url, "pending_phone": request.session.get(SESSION_PHONE)}
    return render(request, "accounts/home.html", context, status=status)


@page
def code_submit(request):
    phone = request.session.get(SESSION_PHONE)
    if not phone:
        messages.warning(request, _("Enter your phone number first, then the code we send to it."))
        return redirect("home")
    form = CodeForm()
    resend_error = None
    status = 200
    if request.method == "POST" and "resend" in request.POST:
        try:
            result = code_request(phone=phone, ip=request_ip(request))
        except RateLimited as exc:
            resend_error = rate_limited_text(exc)
            status = exc.status_code
        except ApplicationError as exc:
            resend_error = exc.message
            status = 400
        else:
            _code_sent(request, result)
            return redirect("code-submit")
    elif request.method == "POST":
        form = CodeForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                user = code_verify(phone=phone, code=form.cleaned_data["confirmation_code"], ip=request_ip(request))
            except RateLimited as exc:
                form.add_error("confirmation_code", rate_limited_text(exc))
                status = 429
            except AuthenticationFailed as exc:
                left = code_tries_left(phone=phone, ip=request_ip(request))
                form.add_error("confirmation_code", wrong_code_text(exc, tries_left=left))
            except ApplicationError as exc:
                form.add_service_error(exc)
            else:
                next_url = _safe_next(request, request.session.pop(SESSION_NEXT, None))
                del request.session[SESSION_PHONE]
                request.session.pop(SESSION_FAKE_CODE, None)
                login(request, user, backend=SESSION_BACKEND)
                messages.success(request, _("You are logged in as %(phone)s.") % {"phone": phone_display(user.phone)})
                return redirect(next_url or "profile")
    ttl_minutes = max(1, round(settings.OTP_TTL_S / 60))
    context = {
        "form": form,
        "phone": phone,
        "resend_error": resend_error,
        "ttl_minutes": ttl_minutes,
        "fake_code": request.session.get(SESSION_FAKE_CODE) if settings.OTP_FAKE_DELIVERY else None,
    }
    return render(request, "accounts/code_submit.html", context, status=status)


@page
def logout_view(request):
    if request.method == "POST":
        logout(request)
        messages.info(request, _("You have logged out."))
        return redirect("home")
    return render(request, "accounts/logout.html")
