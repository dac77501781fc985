"""gunicorn settings for the web process: the Dockerfile's CMD and `make stack` both use this file.

Every knob comes from the environment so one image fits any host (docs.gunicorn.org/en/stable/settings.html).
"""

import os

# Inside compose only nginx reaches this port; `make stack` binds it to 127.0.0.1.
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A request slower than this is killed and its worker replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM (docker stop, deploys) workers finish their requests for this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# nginx keeps upstream connections open (keepalive in nginx/templates).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so a slow leak never grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))

# Access log to stdout (docker logs / the stack's log file); errors to stderr.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The client address nginx forwards, then the usual fields and the time taken (microseconds).
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(b)s "%(a)s" %(D)sus'

# Only nginx talks to gunicorn; it sets X-Forwarded-Proto, and Django reads it itself
# (SECURE_PROXY_SSL_HEADER). gunicorn believes the header only from these peers.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The worker heartbeat files live in memory: /tmp in a container may be a slow overlay.
_shm = "/dev/shm"  # noqa: S108 (a memory file system, not a shared temp folder)
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", _shm if os.path.isdir(_shm) else None)
# gunicornc's control socket is unused here, and two gunicorns on one host would fight over its path.
control_socket_disable = True
# Importing the app before forking shares its memory between workers and fails fast on a bad config.
preload_app = True


# Multiprocess metrics (project/metrics.py): the web's PROMETHEUS_MULTIPROC_DIR starts empty, so
# files of an earlier run's workers do not pile up. Here, not in a hook: the preloaded app opens
# its files before gunicorn's first hook runs.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir:
    os.makedirs(_metrics_dir, exist_ok=True)
    for _name in os.listdir(_metrics_dir):
        if _name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, _name))
