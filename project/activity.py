"""The service's activity per day, for the admin's charts (accounts.sites, /admin/charts/): one
count per day of the last N days, in the site's time zone. Reads only; one grouped query per
series, each bounded to the window.

Used by staff who never open Grafana; Prometheus (project/metrics.py) has the live figures.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int] | None  # None: not recorded in this installation


@dataclass(frozen=True)
class Activity:
    days: list[date]
    series: dict[str, Series]  # by key


def _daily(queryset, field: str, days: list[date]) -> list[int]:
    """Rows of `queryset` per local day of `field`, one count for each of `days` (0 if none)."""
    zone = timezone.get_current_timezone()
    since = timezone.make_aware(datetime.combine(days[0], time.min), zone)
    counts = dict(
        queryset.filter(**{f"{field}__gte": since})
        .annotate(day=TruncDate(field, tzinfo=zone))
        .values("day")
        .annotate(n=Count("*"))
        .values_list("day", "n")
    )
    return [counts.get(day, 0) for day in days]


def activity_daily(*, days: int = 30, today: date | None = None) -> Activity:
    """Signups (users created), logins (codes used), codes sent (issued) and refused, delivery
    failures (outbox rows that failed for good, by the day they were written) and referrals by
    status (by the day of the link), for each of the `days` days up to `today`."""
    from accounts.models import PhoneCode, User
    from notifications.models import Message
    from referrals.models import Referral

    today = today or timezone.localdate()
    window = [today - timedelta(days=days - 1 - i) for i in range(days)]
    series = [
        Series("Signups", _daily(User.objects.all(), "created_at", window)),
        Series("Logins", _daily(PhoneCode.objects.filter(consumed_at__isnull=False), "consumed_at", window)),
        Series("Codes sent", _daily(PhoneCode.objects.all(), "created_at", window)),
        Series("Codes refused", _refusals(window)),
        Series("Delivery failures", _daily(Message.objects.filter(status=Message.Status.FAILED), "created_at", window)),
    ]
    for status in Referral.Status:
        series.append(
            Series(
                f"Referrals {status.label.lower()}",
                _daily(Referral.objects.filter(status=status), "created_at", window),
            )
        )
    return Activity(days=window, series={_key(s.name): s for s in series})


def _refusals(window: list[date]) -> list[int] | None:
    """Refused code requests are rows of the fraud guard's CodeRefusal (issue 20); without that
    model (the guard not installed yet) the series is not recorded."""
    try:
        model = apps.get_model("accounts", "CodeRefusal")
    except LookupError:
        return None
    return _daily(model.objects.filter(~Q(reason="")), "created_at", window)


def _key(name: str) -> str:
    return name.lower().replace(" ", "_")
