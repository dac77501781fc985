from django.contrib.auth.backends import BaseBackend
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

from .models import User

# The session's backend after a password login (Django's admin login form). The admin site
# opens only for sessions made by it (accounts.sites.AdminSite).
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"  # noqa: S105 (a class path, not a secret)
# The session's backend after a login on the phone-code pages (accounts.views).
PHONE_CODE_BACKEND = "accounts.authentication.PhoneCodeBackend"


class JWTUserIdAuthentication(JWTStatelessUserAuthentication):
    """Trusts the signed token for the user id and does not load the user.

    Used by the hot my_profile endpoint: its own query loads the active user together with
    the profile, so a separate user query per request would be pure cost.
    """


class PhoneCodeBackend(BaseBackend):
    """The backend a phone-code login is recorded under. The code pages check the code
    themselves (accounts.services.code_verify) and log the user in naming this backend, so
    authenticate() takes no credentials (BaseBackend's None); get_user() loads the session's
    user. Being another backend than the password's is the point: /admin/ asks for the password."""

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None
