from django.db import models


class Message(models.Model):
    """The outbox: every outgoing message is a row here before anything is sent.

    Written in the caller's transaction; a Celery task delivers it after commit, and the
    sweeper re-publishes rows that were never picked up (Redis was down).
    """

    class Channel(models.TextChoices):
        FILE = "file"
        EMAIL = "email"
        SMS = "sms"
        TELEGRAM = "telegram"
        # Signed JSON events to REFERRAL_WEBHOOK_URL (the recipient); the body is the event.
        WEBHOOK = "webhook"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=255)
    body = models.TextField()
    # Login codes: the body is blanked once the message is delivered or failed.
    sensitive = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Not before: a retry's backoff or Retry-After. The claim and the sweeper both respect it.
    available_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Used by the outbox sweeper: pending or stuck rows, oldest first.
            models.Index(fields=["status", "created_at"], name="message_status_created"),
            # The SMS budget gauge (project/metrics.py, the fraud guard's budget): sms rows of the
            # last hour and day, counted from a small index of sms rows only.
            models.Index(fields=["created_at"], name="message_sms_recent", condition=models.Q(channel="sms")),
        ]

    def __str__(self):
        return f"{self.channel} to {self.recipient} ({self.status})"
