"""Celery tasks of accounts: thin doors into the services."""

from celery import shared_task
from django.utils import timezone

from .guard import guard_watch


@shared_task(ignore_result=True)
def guard_watch_task() -> int:
    """The beat job (notifications/schedule.py, every OTP_CONVERSION_INTERVAL_S): the conversion
    watch. Returns how many countries and prefixes it newly blocked."""
    return len(guard_watch(now=timezone.now()))
