"""The beat schedule, kept in django-celery-beat's tables (editable in the admin).

Written by `manage.py outbox_schedule` and again whenever a beat process starts (the
beat_init signal in project/celery.py), so a fresh database never runs without its sweeper.
"""

from django.conf import settings

SWEEP_NAME = "outbox sweep"
SWEEP_TASK = "notifications.tasks.outbox_sweep_task"
# The fraud guard's conversion watch (accounts.guard.guard_watch), named, not imported.
WATCH_NAME = "guard conversion watch"
WATCH_TASK = "accounts.tasks.guard_watch_task"


def outbox_schedule_ensure() -> None:
    """Create or update the periodic tasks: the sweeper (OUTBOX_SWEEP_INTERVAL_S) and the fraud
    guard's conversion watch (OTP_CONVERSION_INTERVAL_S)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, task, every in (
        (SWEEP_NAME, SWEEP_TASK, settings.OUTBOX_SWEEP_INTERVAL_S),
        (WATCH_NAME, WATCH_TASK, settings.OTP_CONVERSION_INTERVAL_S),
    ):
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": task,
                "interval": interval,
                "enabled": True,
                # A run that waited longer than one interval is stale: the next one will do.
                "expire_seconds": every,
            },
        )
