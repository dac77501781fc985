"""simplejwt's refresh token, its outstanding-token row written with project.db.insert."""

from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from project.db import insert


class RefreshToken(tokens.RefreshToken):
    """Every login writes an outstanding-token row (staff see and revoke refresh tokens by it).
    simplejwt's BlacklistMixin.for_user writes the same row with objects.create; for_user
    writes it with insert(), which skips the ORM's compiler, and the API's login has it written
    by the statement that uses the code (for_user_unsaved; accounts.services.code_verify).
    The token is signed once for the row and the answer, not twice."""

    _signed: tuple[dict, str] | None = None  # (the payload signed, the signature's string)

    @classmethod
    def for_user(cls, user):
        token, row = cls.for_user_unsaved(user)
        insert(row)
        return token

    @classmethod
    def for_user_unsaved(cls, user) -> tuple["RefreshToken", OutstandingToken]:
        """The token and its outstanding-token row, not saved: for a caller that writes the row
        in a statement of its own (accounts.services.code_verify's login_rows)."""
        token = super(tokens.BlacklistMixin, cls).for_user(user)  # the token, without the row
        row = OutstandingToken(
            user=user,
            jti=token[api_settings.JTI_CLAIM],
            token=str(token),
            created_at=token.current_time,
            expires_at=datetime_from_epoch(token["exp"]),
        )
        return token, row

    def __str__(self):
        # simplejwt changes claims through the payload dict (set_jti, set_exp): a copy of the
        # signed payload tells whether the string still matches it.
        if self._signed is None or self._signed[0] != self.payload:
            self._signed = (dict(self.payload), super().__str__())
        return self._signed[1]
