from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication


class JWTUserIdAuthentication(JWTStatelessUserAuthentication):
    """Trusts the signed token for the user id and does not load the user.

    Used by the hot my_profile endpoint: its own query loads the active user together with
    the profile, so a separate user query per request would be pure cost.
    """
