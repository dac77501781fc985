"""The profile page: a thin door into referrals.selectors / referrals.services."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts.phones import phone_display
from project.exceptions import ApplicationError
from project.web import page

from . import selectors, services
from .forms import InviterForm


@login_required
@page
def my_profile(request):
    profile = selectors.profile_get(user_id=request.user.id)
    if profile is None:  # disabled or deleted since the session began
        logout(request)
        return redirect("home")
    form = InviterForm()
    status = 200
    if request.method == "POST":
        form = InviterForm(request.POST)
        if form.is_valid():
            try:
                inviter = services.inviter_set(user_id=request.user.id, code=form.cleaned_data["my_inviter"])
            except ApplicationError as exc:
                form.add_service_error(exc)
            else:
                messages.success(
                    request, _("Saved: you were invited by %(phone)s.") % {"phone": phone_display(inviter.phone)}
                )
                return redirect("profile")
        status = 400
    stats = selectors.user_stats(user_id=request.user.id)
    context = {"profile": profile, "form": form, "stats": stats}
    return render(request, "referrals/my_profile.html", context, status=status)
