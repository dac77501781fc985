"""The beat schedule, kept in django-celery-beat's tables (editable in the admin).

Written by `manage.py outbox_schedule` and again whenever a beat process starts (the
beat_init signal in project/celery.py), so a fresh database never runs without its sweeper.
"""

from django.conf import settings

SWEEP_NAME = "outbox sweep"
SWEEP_TASK = "notifications.tasks.outbox_sweep_task"


def outbox_schedule_ensure() -> None:
    """Create or update the sweeper's periodic task from OUTBOX_SWEEP_INTERVAL_S."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = settings.OUTBOX_SWEEP_INTERVAL_S
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name=SWEEP_NAME,
        defaults={
            "task": SWEEP_TASK,
            "interval": interval,
            "enabled": True,
            # A sweep that waited longer than one interval is stale: the next one will do.
            "expire_seconds": every,
        },
    )
