"""The app without the request metrics' middleware, served by a fourth gunicorn next to the app
(bench/run.py): signup and my_profile side by side with and without it, each over the ceiling
measured next to it (issue 23: the metrics may cost at most 10 % of their requests/s). The
services' own counters stay: they are a few microseconds of each signup (bench/metrics_cost.py)."""

from project.settings import *  # noqa: F403 (the same settings)
from project.settings import MIDDLEWARE as _ALL

MIDDLEWARE = [name for name in _ALL if name != "project.metrics.RequestMetricsMiddleware"]
