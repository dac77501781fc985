from django.conf import settings
from django.db import models


class Referral(models.Model):
    """The inviter link: `invitee` entered `inviter`'s referral code. One per invitee.

    Deleting the inviter removes the link, never the people they invited.
    """

    invitee = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="referral"
    )
    # No single-column index: ("inviter", "created_at") below serves both the FK and my_refs'
    # order, and with a second one the planner picked it and sorted (bench/).
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referrals_made", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(invitee=models.F("inviter")), name="referral_not_self"),
        ]
        indexes = [
            # my_refs: everyone one user invited, in the answer's order (created_at, invitee),
            # read from the index alone: no sort, no visit to the referral rows (bench/).
            models.Index(fields=["inviter", "created_at", "invitee"], name="referral_inviter_order"),
        ]

    def __str__(self):
        return f"{self.inviter_id} invited {self.invitee_id}"
