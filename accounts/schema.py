"""drf-spectacular: JWTUserIdAuthentication is the same Bearer scheme as simplejwt's."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.drainage import set_override

from .authentication import JWTUserIdAuthentication


class JWTUserIdScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.JWTUserIdAuthentication"


# One component ("jwtAuth") for both classes: they read the same header and token.
set_override(JWTUserIdAuthentication, "suppress_collision_warning", True)
