from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class Referral(models.Model):
    """The inviter link: `invitee` entered `inviter`'s referral code. One per invitee, so the
    referral's id is the invitee's.

    The link is a fact set once; `status` says whether it earns a reward: approved, flagged
    (a fraud signal fired: waits for staff) or rejected. Deleting the inviter removes the
    link, never the people they invited.
    """

    class Status(models.TextChoices):
        APPROVED = "approved"
        FLAGGED = "flagged"
        REJECTED = "rejected"

    class Signal(models.TextChoices):
        SHARED_ADDRESS = "shared_address"
        ADJACENT_PHONE = "adjacent_phone"
        INVITER_VELOCITY = "inviter_velocity"

    invitee = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="referral"
    )
    # No single-column index: ("inviter", "created_at") below serves both the FK and my_refs'
    # order, and with a second one the planner picked it and sorted (bench/).
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referrals_made", db_index=False
    )
    # Set by inviter_set (not auto_now_add): an automatic decision's time is exactly this.
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.APPROVED)
    # The signals that fired when the link was made, in Signal's order; kept after a decision.
    signals = ArrayField(models.CharField(max_length=32, choices=Signal.choices), default=list, blank=True)
    # When the status was decided (None while flagged) and by whom (None: automatically). The
    # default suits a link written as approved (the status's default) outside inviter_set.
    decided_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals_decided",
        db_index=False,
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(invitee=models.F("inviter")), name="referral_not_self"),
            # A flagged referral waits for a decision; any other status has one.
            models.CheckConstraint(
                condition=models.Q(status="flagged", decided_at__isnull=True, decided_by__isnull=True)
                | (~models.Q(status="flagged") & models.Q(decided_at__isnull=False)),
                name="referral_decided_unless_flagged",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["approved", "flagged", "rejected"]), name="referral_status_known"
            ),
        ]
        indexes = [
            # my_refs: everyone one user invited, in the answer's order (created_at, invitee),
            # read from the index alone: no sort, no visit to the referral rows (bench/).
            models.Index(fields=["inviter", "created_at", "invitee"], name="referral_inviter_order"),
            # The review queue: the flagged ones, oldest first.
            models.Index(
                fields=["created_at", "invitee"], name="referral_flagged_queue", condition=models.Q(status="flagged")
            ),
            # decided_by's FK (a staff deletion sets it NULL) on the few decided rows only.
            models.Index(
                fields=["decided_by"], name="referral_decided_by", condition=models.Q(decided_by__isnull=False)
            ),
        ]

    def __str__(self):
        return f"{self.inviter_id} invited {self.invitee_id} ({self.status})"
