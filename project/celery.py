import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@beat_init.connect
def _outbox_schedule_on_beat_start(sender=None, **kwargs):
    """Every beat process makes sure the outbox sweeper is scheduled (notifications/schedule.py)."""
    from notifications.schedule import outbox_schedule_ensure

    outbox_schedule_ensure()
