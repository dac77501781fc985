"""simplejwt's refresh token, its outstanding-token row written with project.db.insert."""

from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from project.db import insert


class RefreshToken(tokens.RefreshToken):
    """Every login writes an outstanding-token row (staff see and revoke refresh tokens by it).
    simplejwt's BlacklistMixin.for_user writes the same row with objects.create; insert()
    skips the ORM's compiler on the login path (bench/: a login is four statements, this is
    one of them). The token is signed once for the row and the answer, not twice."""

    _signed: tuple[dict, str] | None = None  # (the payload signed, the signature's string)

    @classmethod
    def for_user(cls, user):
        token = super(tokens.BlacklistMixin, cls).for_user(user)  # the token, without the row
        insert(
            OutstandingToken(
                user=user,
                jti=token[api_settings.JTI_CLAIM],
                token=str(token),
                created_at=token.current_time,
                expires_at=datetime_from_epoch(token["exp"]),
            )
        )
        return token

    def __str__(self):
        # simplejwt changes claims through the payload dict (set_jti, set_exp): a copy of the
        # signed payload tells whether the string still matches it.
        if self._signed is None or self._signed[0] != self.payload:
            self._signed = (dict(self.payload), super().__str__())
        return self._signed[1]
