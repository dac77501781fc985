"""Prometheus metrics (prometheus-client): what the services count, what /metrics reads when
scraped, and the view that serves them (README, "Metrics").

Counters and histograms are written by the process that does the work: gunicorn's workers (the
requests, the codes), the Celery workers (the deliveries). With PROMETHEUS_MULTIPROC_DIR set
(the stack: one folder per kind of process) each process writes its own files there and
/metrics adds up every folder in METRICS_COLLECT_DIRS; without it (runserver, the tests) the
process's own registry is served. Gauges of the database (the outbox, the SMS budget, the review
queue) are read when scraped, by the scraping web process, in one query of indexed counts.
"""

import contextlib
import glob
import ipaddress
import os
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .web import request_ip

# --- what the services count -------------------------------------------------------------------

# Each process opens its files when a metric is made (here): the folder must exist by then.
# gunicorn's config empties the web's at start (deploy/gunicorn.conf.py); a Celery worker's files
# are named by pid and reused by a later process with that pid, counting on.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Requests by view, method and status: time from the first middleware in to the answer out.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CODES_ISSUED = Counter("otp_codes_issued", "Login codes issued (and queued for delivery), by phone region.", ["region"])
CODES_REFUSED = Counter(
    "otp_codes_refused", "Login code requests refused, by the rule's reason (limits and fraud guard).", ["reason"]
)
CODES_USED = Counter("otp_codes_used", "Login codes used: a right try, a login.", ["region"])
WRONG_TRIES = Counter("otp_wrong_tries", "Wrong login codes tried (counted against a code).")
TRIES_REFUSED = Counter("otp_tries_refused", "Code tries refused before they were counted, by reason.", ["reason"])
USERS_CREATED = Counter("users_created", "Users created: a phone's first login (a signup).")
DELIVERIES = Counter(
    "outbox_deliveries", "Outbox deliveries finished, by channel and outcome (sent, failed).", ["channel", "outcome"]
)
DELIVERY_RETRIES = Counter("outbox_delivery_retries", "Delivery tries that will be retried, by channel.", ["channel"])
DELIVERY_SECONDS = Histogram(
    "outbox_delivery_seconds",
    "Time from the outbox row's creation to its being marked sent, by channel.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
REFERRALS = Counter("referrals", "Referral statuses given: at the link (approved, flagged) and by staff.", ["status"])

# Methods outside this set share one label, so a client cannot mint label values.
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def phone_region(phone: str) -> str:
    """The main region of an E.164 number's country code ("+79..." -> "RU"): a label of the
    code counters (the conversion alert is per country). Country codes are prefix-free, so
    the first of 1-3 digits that is one decides; three dict lookups, no parsing."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    for length in (1, 2, 3):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(phone[1 : 1 + length] or 0))
        if regions:
            return regions[0]
    return "ZZ"


# Label children by region: labels() costs more than the inc itself (bench/metrics_cost.py).
_issued_by_region, _used_by_region = {}, {}


def _count_by_region(counter, children: dict, phone: str) -> None:
    region = phone_region(phone)
    child = children.get(region)
    if child is None:
        child = children[region] = counter.labels(region)
    child.inc()


def code_issued(phone: str) -> None:
    """Count an issued code under its phone's region (Used by code_request)."""
    _count_by_region(CODES_ISSUED, _issued_by_region, phone)


def code_used(phone: str) -> None:
    """Count a used code (a login) under its phone's region (Used by code_verify)."""
    _count_by_region(CODES_USED, _used_by_region, phone)


def code_refused(exc) -> None:
    """Count a refused code request by the refusal's reason (ApplicationError.reason); a refusal
    without one is bad input, not a rule, and is not counted."""
    if exc.reason:
        CODES_REFUSED.labels(exc.reason).inc()


def delivery_finished(*, message, outcome: str) -> None:
    """Count a delivery's end (Used by the outbox worker): sent ones with their time from the row."""
    DELIVERIES.labels(message.channel, outcome).inc()
    if outcome == "sent":
        DELIVERY_SECONDS.labels(message.channel).observe((timezone.now() - message.created_at).total_seconds())


# --- requests ----------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Times every request (first in MIDDLEWARE). Cheap on purpose: a dict lookup for the
    label child and one observe (bench/: the cost on signup and my_profile)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.children = {}

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        method = request.method if request.method in _METHODS else "other"  # bounds the cache too
        key = (match.view_name if match is not None else "", method, response.status_code)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = REQUEST_SECONDS.labels(key[0] or "unresolved", method, str(key[2]))
        child.observe(time.perf_counter() - started)
        return response


# --- read when scraped ---------------------------------------------------------------------------

# The outbox (the status index), the SMS codes of the hour and the day (the partial index on
# sms rows, notifications migration 0004) and the review queue (the flagged partial index), in
# one round trip.
_STATE_SQL = """
SELECT
    (SELECT count(*) FROM {message} WHERE status = 'pending'),
    (SELECT min(created_at) FROM {message} WHERE status = 'pending'),
    (SELECT count(*) FROM {message} WHERE channel = 'sms' AND created_at > %(hour_ago)s),
    (SELECT count(*) FROM {message} WHERE channel = 'sms' AND created_at > %(day_ago)s),
    (SELECT count(*) FROM {referral} WHERE status = 'flagged')
"""


def state_read() -> dict:
    """The database's gauges as of now (Used by the /metrics scrape)."""
    # Imported here: the middleware imports this module while the apps load.
    from notifications.models import Message
    from referrals.models import Referral

    sql = _STATE_SQL.format(message=Message._meta.db_table, referral=Referral._meta.db_table)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql, {"hour_ago": now - timedelta(hours=1), "day_ago": now - timedelta(days=1)})
        pending, oldest, sms_hour, sms_day, flagged = cursor.fetchone()
    return {
        "pending": pending,
        "oldest_age": (now - oldest).total_seconds() if oldest is not None else 0.0,
        "sms": {"hour": sms_hour, "day": sms_day},
        "flagged": flagged,
    }


def guard_setting(name: str, default):
    """A fraud-guard setting (issue 20), with its documented default while the guard is absent."""
    return getattr(settings, name, default)


def sms_budgets() -> dict:
    """The fraud guard's SMS budgets per window."""
    return {"hour": guard_setting("OTP_SMS_BUDGET_PER_HOUR", 300), "day": guard_setting("OTP_SMS_BUDGET_PER_DAY", 3000)}


class StateCollector:
    """The gauges read at scrape time: /ready/'s checks, then one query (state_read). With the
    database down only app_ready (0) is answered, so the NotReady alert still fires; with the
    broker down the outbox gauges still show the rows piling up."""

    def describe(self):
        return self.families(None, ready=1.0)

    def collect(self):
        from .health import ready_failures

        failures = ready_failures()
        state = None
        if not any(failure.startswith("database") for failure in failures):
            with contextlib.suppress(DatabaseError):
                state = state_read()
        return self.families(state, ready=0.0 if failures else 1.0)

    @staticmethod
    def families(state, *, ready):
        """The families; without `state` (the database is down, or describe) only their names."""
        families = [
            GaugeMetricFamily("app_ready", "1 while /ready/ would answer 200 (database and broker).", value=ready)
        ]
        rate = GaugeMetricFamily(
            "otp_conversion_min_rate", "The guard's least rate of codes used per code issued (alert threshold)."
        )
        codes = GaugeMetricFamily("otp_conversion_min_codes", "Codes issued before the conversion rate is judged.")
        rate.add_metric([], guard_setting("OTP_CONVERSION_MIN_RATE", 0.2))
        codes.add_metric([], guard_setting("OTP_CONVERSION_MIN_CODES", 20))
        families += [rate, codes]
        pending = GaugeMetricFamily("outbox_pending_rows", "Outbox rows waiting for delivery.")
        oldest = GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row (0 when none)."
        )
        sent = GaugeMetricFamily("otp_sms_codes", "SMS outbox rows of the window.", labels=["window"])
        budget = GaugeMetricFamily("otp_sms_budget", "The SMS budget of the window.", labels=["window"])
        used = GaugeMetricFamily("otp_sms_budget_used_ratio", "SMS rows of the window / its budget.", labels=["window"])
        flagged = GaugeMetricFamily("referrals_flagged_pending", "Flagged referrals waiting for staff.")
        if state is not None:
            pending.add_metric([], state["pending"])
            oldest.add_metric([], state["oldest_age"])
            for window, limit in sms_budgets().items():
                sent.add_metric([window], state["sms"][window])
                budget.add_metric([window], limit)
                used.add_metric([window], state["sms"][window] / limit if limit else 0.0)
            flagged.add_metric([], state["flagged"])
        return [*families, pending, oldest, sent, budget, used, flagged]


_state_registry = CollectorRegistry()
_state_registry.register(StateCollector())


def metrics_dirs() -> list[str]:
    """The multiprocess folders /metrics adds up: METRICS_COLLECT_DIRS, else this process's own."""
    dirs = settings.METRICS_COLLECT_DIRS or [os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")]
    return [path for path in dirs if path]


class FoldersCollector:
    """MultiProcessCollector over several folders: one family per metric, the files of every
    folder added up (one MultiProcessCollector per folder would repeat each family)."""

    def __init__(self, paths):
        self.paths = paths

    def collect(self):
        files = [name for path in self.paths for name in sorted(glob.glob(os.path.join(path, "*.db")))]
        return MultiProcessCollector.merge(files, accumulate=True)


def metrics_text() -> bytes:
    """Everything /metrics answers, in Prometheus' text format."""
    dirs = metrics_dirs()
    if dirs:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FoldersCollector(dirs))
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_state_registry)


def metrics_allowed(ip: str | None) -> bool:
    """Whether a client address is in METRICS_ALLOWED (the same list nginx allows)."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
def metrics(request):
    """/metrics: only for the addresses in METRICS_ALLOWED (nginx checks the same list)."""
    if not metrics_allowed(request_ip(request)):
        return JsonResponse({"detail": "Metrics are not served to this address."}, status=403)
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
