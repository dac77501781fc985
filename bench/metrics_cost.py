"""What the request metrics cost (issue 23: at most 10 % of signup's and my_profile's requests/s).

Two measurements, both in multiprocess mode (PROMETHEUS_MULTIPROC_DIR set, as in production):
- the middleware alone: a loop of calls around a prebuilt answer, with and without it (µs);
- signup and GET my_profile through Django's test client, two clients alternating request by
  request, one with RequestMetricsMiddleware and one without, so both see the same machine.
bench/run.py calls `metrics_side_by_side`; `python -m bench.metrics_cost` runs it alone on
DATABASE_URL (migrated) with a user of its own.
"""

import os
import statistics
import time

MIDDLEWARE = "project.metrics.RequestMetricsMiddleware"


def middleware_alone(n: int = 200_000) -> dict:
    """µs per request the middleware adds: its call around a view that returns at once."""
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from project.metrics import RequestMetricsMiddleware

    request = RequestFactory().post("/api/v1/auth/signup/")
    request.resolver_match = resolve("/api/v1/auth/signup/")
    answer = HttpResponse()

    def view(request):
        return answer

    timed = RequestMetricsMiddleware(view)
    best = {}
    for name, call in (("without", view), ("with", timed)):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                call(request)
            runs.append((time.perf_counter() - t0) / n)
        best[name] = min(runs)
    return {"calls": n, "added_us": round((best["with"] - best["without"]) * 1e6, 2)}


def metrics_side_by_side(*, profile_token: str, requests_each: int = 1000, phone_base: int = 79960000000) -> dict:
    """signup and my_profile in-process, with and without the middleware, alternating."""
    from django.conf import settings
    from django.test import Client, override_settings

    with_metrics, without = Client(), Client()
    rest = [name for name in settings.MIDDLEWARE if name != MIDDLEWARE]
    assert len(rest) == len(settings.MIDDLEWARE) - 1, "the metrics middleware is not installed"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {profile_token}"}
    # The client keeps the middleware chain it loaded on its first request.
    with override_settings(MIDDLEWARE=rest):
        assert without.get("/api/v1/my_profile/", **auth).status_code == 200
    assert with_metrics.get("/api/v1/my_profile/", **auth).status_code == 200

    samples = {(kind, on): [] for kind in ("signup", "my_profile") for on in (True, False)}
    for n in range(requests_each * 2):
        on = n % 2 == 0
        client = with_metrics if on else without
        phone = f"+{phone_base + n}"
        # Its own client address per signup (X-Forwarded-For from the trusted 127.0.0.1, as nginx
        # sends it), so the per-address limit never refuses.
        address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        t0 = time.perf_counter()
        answer = client.post(
            "/api/v1/auth/signup/", {"phone": phone}, content_type="application/json", HTTP_X_FORWARDED_FOR=address
        )
        samples["signup", on].append(time.perf_counter() - t0)
        assert answer.status_code == 200, answer.content[:200]
        t0 = time.perf_counter()
        answer = client.get("/api/v1/my_profile/", **auth)
        samples["my_profile", on].append(time.perf_counter() - t0)
        assert answer.status_code == 200, answer.content[:200]
    result = {"requests_each": requests_each, "multiprocess": bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))}
    for kind in ("signup", "my_profile"):
        on, off = statistics.median(samples[kind, True]), statistics.median(samples[kind, False])
        result[kind] = {
            "with_metrics_median_ms": round(on * 1000, 3),
            "without_median_ms": round(off * 1000, 3),
            # requests/s with the metrics as a share of requests/s without (1.0: free).
            "speed_with_over_without": round(off / on, 3),
        }
    result["middleware_alone"] = middleware_alone()
    return result


if __name__ == "__main__":
    import json
    import tempfile

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="metrics-cost-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    for key, value in {
        "DEBUG": "0",
        "HTTPS": "0",
        "SECRET_KEY": "bench-only-secret-key-" + "b" * 40,
        "ALLOWED_HOSTS": "testserver",
        "OTP_RESEND_COOLDOWN_S": "0",
        "OTP_SENDS_PER_PHONE_PER_HOUR": "1000000",
        "TRUSTED_PROXIES": "127.0.0.1",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12"),
        "OTP_DELIVERY_BACKENDS": "file",
        "SENT_MESSAGES_DIR": tempfile.mkdtemp(prefix="metrics-cost-sent-"),
        "LOG_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(key, value)
    import django

    django.setup()
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User

    user, _ = User.objects.get_or_create(phone="+79950000777")
    token = str(RefreshToken.for_user(user).access_token)
    base = 79960000000 + int(time.time()) % 100_000 * 2_500  # fresh phones on every run
    print(json.dumps(metrics_side_by_side(profile_token=token, phone_base=base), indent=2))
