"""Settings for the referral service. Every knob comes from the environment.

The defaults give the embedded mode of `make run` (the embedded PostgreSQL server, tasks
in-process). With DEBUG off the process refuses to start without the secrets it needs. Tests set
theirs through the environment too (pyproject.toml, [tool.pytest_env]).
"""

import ipaddress
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import environ
import phonenumbers
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from project import embedded_postgres

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def _required(name, *, when=True, dev_default=""):
    """A secret: optional in DEBUG (dev_default), mandatory otherwise."""
    value = env.str(name, default="")
    if value:
        return value
    if when and not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")
    return dev_default


SECRET_KEY = _required("SECRET_KEY", dev_default="dev-only-insecure-key-" + "x" * 40)
# A weak key (what `check --deploy` warns of: security.W009's own criteria) signs sessions,
# tokens and the code digests: with DEBUG off the process does not start on one.
if not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
        f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different, and no {SECRET_KEY_INSECURE_PREFIX!r} "
        'prefix. Make one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "project.apps.AdminConfig",  # django.contrib.admin, its site needing the password
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "django_celery_beat",
    "accounts",
    "referrals",
    "notifications",
]

MIDDLEWARE = [
    # First: times the whole stack (project/metrics.py).
    "project.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of each answer: the set_language cookie (the pages' switch), else Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
            # {{ phone|phone_display }} on every page without a {% load %}.
            "builtins": ["accounts.templatetags.phones"],
        },
    },
]


# PostgreSQL is the only database. DATABASE_URL names the server; without it, the private server
# of `make run` / `make test` (project/embedded_postgres.py) on the unix socket in its data folder,
# so a manage.py command run outside the wrapper reaches the server of a running `make run`.
DATABASES = {"default": env.db("DATABASE_URL", default=embedded_postgres.database_url())}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// URL: PostgreSQL is the only database")
# In libpq's URL form a socket folder is the host, percent-encoded; django-environ leaves it encoded.
DATABASES["default"]["HOST"] = unquote(DATABASES["default"]["HOST"])
# Persistent connections: opening one per request costs more than the request itself.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# No health check per request: it is a round trip (SELECT 1) before each request's first query,
# about 10 % of my_profile's time (bench/). A connection that died (PostgreSQL or PgBouncer
# restarted) fails one request with 503 + Retry-After (project/exceptions.py), and Django closes
# it at the end of that request; the next request opens a new one. Django's psycopg pool
# (OPTIONS "pool") measured the same as this (1.77 vs 1.77 ms a request, in-process) with more
# moving parts.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Opt-in: parameters travel apart from the SQL and psycopg prepares a statement it has run 5 times,
# so PostgreSQL stops parsing and planning the hot queries per request (bench/). Off by default: a
# pooler in transaction mode must then keep prepared statements per client, which needs PgBouncer
# >= 1.21 with max_prepared_statements set. A direct connection is fine.
# docs.djangoproject.com/en/5.2/ref/databases/#server-side-parameters-binding
if env.bool("DATABASE_SERVER_SIDE_BINDING", default=False):
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# The password (the admin login) and the phone code (the login pages) are recorded as different
# backends in the session: /admin/ opens only for the password's (accounts.sites.AdminSite).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "accounts.authentication.PhoneCodeBackend",
]
# Password tries at the admin login, per account and per client address, in a window that starts
# at the first try (accounts.services.password_try_count).
ADMIN_LOGIN_TRIES_PER_ACCOUNT = env.int("ADMIN_LOGIN_TRIES_PER_ACCOUNT", default=5)
ADMIN_LOGIN_TRIES_PER_IP = env.int("ADMIN_LOGIN_TRIES_PER_IP", default=20)
ADMIN_LOGIN_WINDOW_S = env.int("ADMIN_LOGIN_WINDOW_S", default=15 * 60)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The pages, form errors, API messages and the login code's SMS / e-mail text come in Russian or
# English: the language switch's cookie, else the request's Accept-Language, else LANGUAGE_CODE.
# The default stays English so that API clients that send no Accept-Language get the messages they
# always got; browsers send one, so Russian browsers get Russian. Catalogue: locale/ (make messages).
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(f"LANGUAGE_CODE must be one of {', '.join(dict(LANGUAGES))}, not {LANGUAGE_CODE!r}")
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# Times are stored and sent by the API in UTC (ISO 8601); the pages and the admin show them in
# TIME_ZONE.
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Moscow")
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves hashed, compressed files from collectstatic's manifest; without one (DEBUG,
# the test suite: STATIC_MANIFEST=0) the files are served as they are.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "/"

# --- HTTPS (on by default when DEBUG is off; HTTPS=0 for plain-HTTP local runs) ---
HTTPS = env.bool("HTTPS", default=not DEBUG)
# nginx sets X-Forwarded-Proto; Django trusts it because only nginx can reach gunicorn.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# Health checks come from the load balancer over plain HTTP, Prometheus' scrapes from its network.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$", r"^metrics$"]

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["project.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["project.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "project.negotiation.ContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "project.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SIMPLE_JWT = {
    # Short-lived access tokens; the refresh token rotates and the old one is blacklisted.
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_LIFETIME_S", default=15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_LIFETIME_S", default=14 * 86400)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Phone referral service API",
    "DESCRIPTION": "Phone-code login, referral codes and inviter links.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # drf-spectacular's own enum hook, then Django's 400 and 413 on every operation.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "project.schema.django_refusals"],
}

# --- OTP ---
# FAKE_CONFIRM is the older name of OTP_FAKE_DELIVERY; both are honoured.
OTP_FAKE_DELIVERY = env.bool("OTP_FAKE_DELIVERY", default=env.bool("FAKE_CONFIRM", default=DEBUG))
OTP_FAKE_DELIVERY_FORCED = env.bool("OTP_FAKE_DELIVERY_FORCED", default=False)
OTP_TTL_S = env.int("OTP_TTL_S", default=300)
# A code takes OTP_MAX_ATTEMPTS tries from all addresses together, OTP_MAX_ATTEMPTS_PER_IP from
# one address: one address cannot burn someone else's code (SECURITY.md, "Login codes").
OTP_MAX_ATTEMPTS = env.int("OTP_MAX_ATTEMPTS", default=10)
OTP_MAX_ATTEMPTS_PER_IP = env.int("OTP_MAX_ATTEMPTS_PER_IP", default=5)
# Between two codes for one phone asked for from one address.
OTP_RESEND_COOLDOWN_S = env.int("OTP_RESEND_COOLDOWN_S", default=60)
# Codes a phone gets an hour from all addresses together, and from one address: one address
# cannot use up someone else's phone.
OTP_SENDS_PER_PHONE_PER_HOUR = env.int("OTP_SENDS_PER_PHONE_PER_HOUR", default=10)
OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR = env.int("OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR", default=5)
OTP_SENDS_PER_IP_PER_HOUR = env.int("OTP_SENDS_PER_IP_PER_HOUR", default=20)
# The per-address limits count an IPv6 client by its network of this many bits (one customer
# usually gets a whole /64), an IPv4 client by its address.
OTP_IPV6_PREFIX = env.int("OTP_IPV6_PREFIX", default=64)
# Wrong codes one client address may try per hour, at all phones together (guessing across phones).
OTP_TRIES_PER_IP_PER_HOUR = env.int("OTP_TRIES_PER_IP_PER_HOUR", default=50)
# A cap of 0 would refuse every code, and the limits query would ask for OFFSET -1 (a 500).
for _name, _least in (
    ("OTP_TTL_S", 1),
    ("OTP_MAX_ATTEMPTS", 1),
    ("OTP_MAX_ATTEMPTS_PER_IP", 1),
    ("OTP_RESEND_COOLDOWN_S", 0),
    ("OTP_SENDS_PER_PHONE_PER_HOUR", 1),
    ("OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR", 1),
    ("OTP_SENDS_PER_IP_PER_HOUR", 1),
    ("OTP_IPV6_PREFIX", 1),
    ("OTP_TRIES_PER_IP_PER_HOUR", 1),
    ("ADMIN_LOGIN_TRIES_PER_ACCOUNT", 1),
    ("ADMIN_LOGIN_TRIES_PER_IP", 1),
    ("ADMIN_LOGIN_WINDOW_S", 1),
):
    if globals()[_name] < _least:
        raise ImproperlyConfigured(f"{_name} must be at least {_least}, not {globals()[_name]}")
if OTP_IPV6_PREFIX > 128:
    raise ImproperlyConfigured(f"OTP_IPV6_PREFIX must be at most 128, not {OTP_IPV6_PREFIX}")
# Each per-address share must leave the others some: else one address locks a phone out.
for _share, _whole in (
    ("OTP_MAX_ATTEMPTS_PER_IP", "OTP_MAX_ATTEMPTS"),
    ("OTP_SENDS_PER_PHONE_PER_IP_PER_HOUR", "OTP_SENDS_PER_PHONE_PER_HOUR"),
):
    if globals()[_share] >= globals()[_whole]:
        raise ImproperlyConfigured(
            f"{_whole} ({globals()[_whole]}) must be more than {_share} ({globals()[_share]}), "
            "so that one address cannot lock a phone out"
        )
# Which backends carry login codes (notifications/backends/). The file backend writes to disk:
# fine for DEBUG and demos; production names its real channels (sms, email).
OTP_DELIVERY_BACKENDS = env.list("OTP_DELIVERY_BACKENDS", default=["file"])
_unknown_backends = set(OTP_DELIVERY_BACKENDS) - {"file", "email", "sms"}
if _unknown_backends:
    raise ImproperlyConfigured(f"OTP_DELIVERY_BACKENDS: unknown {sorted(_unknown_backends)}; use file, email, sms")
# Addresses of reverse proxies whose X-Forwarded-For is believed (nginx in the stack).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="RU")
PHONENUMBER_DEFAULT_REGION = PHONE_DEFAULT_REGION
PHONENUMBER_DB_FORMAT = "E164"

# --- Fraud guard (accounts/guard.py, README "Fraud guard", SECURITY.md "SMS pumping") ---
# Countries (ISO codes) whose numbers get codes; "*" allows every country.
OTP_ALLOWED_REGIONS = [
    region.strip().upper() for region in env.list("OTP_ALLOWED_REGIONS", default=[PHONE_DEFAULT_REGION]) if region
]
# Kinds of number that get codes, by libphonenumber's offline metadata: the lower-case names of
# phonenumbers.PhoneNumberType with "-" for "_" (mobile, fixed-line-or-mobile, fixed-line, voip,
# toll-free, premium-rate, shared-cost, personal-number, pager, uan, voicemail, unknown).
NUMBER_TYPE_NAMES = {
    name.lower().replace("_", "-"): value
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}
OTP_ALLOWED_NUMBER_TYPES = env.list("OTP_ALLOWED_NUMBER_TYPES", default=["mobile", "fixed-line-or-mobile"])
_unknown_types = set(OTP_ALLOWED_NUMBER_TYPES) - set(NUMBER_TYPE_NAMES)
if _unknown_types:
    raise ImproperlyConfigured(
        f"OTP_ALLOWED_NUMBER_TYPES: unknown {sorted(_unknown_types)}; use {', '.join(sorted(NUMBER_TYPE_NAMES))}"
    )
# Prefix velocity: numbers that share all but their last OTP_PREFIX_FREE_DIGITS digits are one
# prefix (a pumped range); it gets at most OTP_SENDS_PER_PREFIX_PER_HOUR codes per clock hour.
OTP_PREFIX_FREE_DIGITS = env.int("OTP_PREFIX_FREE_DIGITS", default=4)
OTP_SENDS_PER_PREFIX_PER_HOUR = env.int("OTP_SENDS_PER_PREFIX_PER_HOUR", default=10)
# Codes through the paid channel (sms) across the service per clock hour and per UTC day; ops
# alerts at 80 % and 100 %, then 503 until the window ends.
OTP_SMS_BUDGET_PER_HOUR = env.int("OTP_SMS_BUDGET_PER_HOUR", default=300)
OTP_SMS_BUDGET_PER_DAY = env.int("OTP_SMS_BUDGET_PER_DAY", default=3000)
# Conversion watch: over the last hour, a country or prefix with at least OTP_CONVERSION_MIN_CODES
# settled codes (used or expired) of which fewer than OTP_CONVERSION_MIN_RATE were used is blocked
# for an hour. Beat runs the watch every OTP_CONVERSION_INTERVAL_S seconds.
OTP_CONVERSION_MIN_CODES = env.int("OTP_CONVERSION_MIN_CODES", default=20)
OTP_CONVERSION_MIN_RATE = env.float("OTP_CONVERSION_MIN_RATE", default=0.2)
OTP_CONVERSION_INTERVAL_S = env.int("OTP_CONVERSION_INTERVAL_S", default=60)
# Test numbers (app-store review, demos, CI): "+79990000001:1234,+79990000002:5678". Each logs in
# with its fixed code; nothing is sent, no limit or guard applies (a code's try cap does). With
# DEBUG off `check --deploy` refuses them unless OTP_TEST_NUMBERS_FORCED=1.
OTP_TEST_NUMBERS = {}
for _entry in filter(None, env.list("OTP_TEST_NUMBERS", default=[])):
    _phone, _, _code = _entry.partition(":")
    try:
        _number = phonenumbers.parse(_phone.strip(), PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        _number = None
    if _number is None or not phonenumbers.is_valid_number(_number) or not (len(_code) == 4 and _code.isdigit()):
        raise ImproperlyConfigured(f"OTP_TEST_NUMBERS: {_entry!r} is not <phone>:<4 digits>")
    OTP_TEST_NUMBERS[phonenumbers.format_number(_number, phonenumbers.PhoneNumberFormat.E164)] = _code
OTP_TEST_NUMBERS_FORCED = env.bool("OTP_TEST_NUMBERS_FORCED", default=False)
for _name, _least in (
    ("OTP_PREFIX_FREE_DIGITS", 0),
    ("OTP_SENDS_PER_PREFIX_PER_HOUR", 1),
    ("OTP_SMS_BUDGET_PER_HOUR", 1),
    ("OTP_SMS_BUDGET_PER_DAY", 1),
    ("OTP_CONVERSION_MIN_CODES", 1),
    ("OTP_CONVERSION_INTERVAL_S", 1),
):
    if globals()[_name] < _least:
        raise ImproperlyConfigured(f"{_name} must be at least {_least}, not {globals()[_name]}")
if OTP_PREFIX_FREE_DIGITS > 8:
    raise ImproperlyConfigured(f"OTP_PREFIX_FREE_DIGITS must be at most 8, not {OTP_PREFIX_FREE_DIGITS}")
if not 0 <= OTP_CONVERSION_MIN_RATE <= 1:
    raise ImproperlyConfigured(f"OTP_CONVERSION_MIN_RATE must be between 0 and 1, not {OTP_CONVERSION_MIN_RATE}")

# --- Referral programme (referrals/services.py) ---
# 0 approves every referral without computing the fraud signals.
REFERRAL_REVIEW = env.bool("REFERRAL_REVIEW", default=True)
# shared_address: both users asked for login codes from one address (IPv6: one /64) this recently.
REFERRAL_SIGNAL_WINDOW_DAYS = env.int("REFERRAL_SIGNAL_WINDOW_DAYS", default=30)
# inviter_velocity: more referrals than this for one inviter within an hour (this one included).
REFERRAL_MAX_PER_HOUR = env.int("REFERRAL_MAX_PER_HOUR", default=10)
for _name in ("REFERRAL_SIGNAL_WINDOW_DAYS", "REFERRAL_MAX_PER_HOUR"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be at least 0, not {globals()[_name]}")
# Signed events (referral.approved / .flagged / .rejected) go to this URL through the outbox; the
# receiver checks X-Referral-Signature with the secret. Empty: no webhooks.
REFERRAL_WEBHOOK_URL = env.str("REFERRAL_WEBHOOK_URL", default="")
if REFERRAL_WEBHOOK_URL and not (
    REFERRAL_WEBHOOK_URL.startswith(("https://", "http://")) and len(REFERRAL_WEBHOOK_URL) <= 255
):
    raise ImproperlyConfigured("REFERRAL_WEBHOOK_URL must be an http(s):// URL of at most 255 characters")
REFERRAL_WEBHOOK_SECRET = _required("REFERRAL_WEBHOOK_SECRET", when=bool(REFERRAL_WEBHOOK_URL))

# --- Delivery ---
SENT_MESSAGES_DIR = Path(env.str("SENT_MESSAGES_DIR", default=str(BASE_DIR / "sent_messages")))
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@localhost")
# Login codes by e-mail go to <phone digits>@OTP_EMAIL_DOMAIN (an SMS-over-mail gateway).
OTP_EMAIL_DOMAIN = env.str("OTP_EMAIL_DOMAIN", default="sms.localhost")
# SMS: smsru (api_id as SMS_API_KEY) or twilio (SMS_API_KEY is "AccountSid:AuthToken",
# SMS_SENDER the From number). SMS_API_URL overrides the provider's base URL (tests, proxies).
SMS_PROVIDER = env.str("SMS_PROVIDER", default="smsru")
if SMS_PROVIDER not in ("smsru", "twilio"):
    raise ImproperlyConfigured("SMS_PROVIDER must be smsru or twilio")
SMS_API_URL = env.str("SMS_API_URL", default="")
SMS_API_KEY = _required("SMS_API_KEY", when="sms" in OTP_DELIVERY_BACKENDS)
SMS_SENDER = env.str("SMS_SENDER", default="")
# Messages per second per provider account, shared by all workers (notifications/throttle.py).
SMS_RATE_PER_S = env.float("SMS_RATE_PER_S", default=5.0)
# Connect/read timeout of provider HTTP calls (SMS, Telegram), seconds.
DELIVERY_HTTP_TIMEOUT_S = env.float("DELIVERY_HTTP_TIMEOUT_S", default=10.0)
# Ops alerts (a permanently failed delivery) go to the Telegram ops chat; on when a bot token is
# set, and TELEGRAM_ALERTS=1 makes the token and chat id mandatory with DEBUG off.
TELEGRAM_ALERTS = env.bool("TELEGRAM_ALERTS", default=bool(env.str("TELEGRAM_BOT_TOKEN", default="")))
TELEGRAM_BOT_TOKEN = _required("TELEGRAM_BOT_TOKEN", when=TELEGRAM_ALERTS)
TELEGRAM_CHAT_ID = _required("TELEGRAM_CHAT_ID", when=TELEGRAM_ALERTS)
TELEGRAM_API_URL = env.str("TELEGRAM_API_URL", default="https://api.telegram.org")
# Telegram allows about one message per second per chat.
TELEGRAM_RATE_PER_S = env.float("TELEGRAM_RATE_PER_S", default=1.0)
PROJECT_NAME = env.str("PROJECT_NAME", default="referral-service")

# --- Celery ---
# Without a broker the tasks run in-process (the embedded default of `make run`).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_EAGER_PROPAGATES = False
# No result store: a delivery's record is its outbox row (status, attempts, error, provider id),
# and Flower follows tasks by the workers' events.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each pool process has up to 4 tasks waiting in the worker, so it starts the next one without a
# Redis round trip (deliveries are milliseconds long). Acked only when done (acks_late): a
# worker that dies leaves them to Redis and the sweeper, like the one it was running.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
# Flower learns of a task from the worker's events (received, started, succeeded); a "sent" event
# from the web process would cost every signup an extra Redis publish (about 0.45 ms, bench/).
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Publishing happens on the request path: fail fast when Redis is down, the outbox
# sweeper re-publishes later (see notifications.services.message_enqueue).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=1.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2, "max_retries": 0}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery's Django fixup closes the worker's database connection around every task unless told to
# reuse it (then it closes every N tasks); a new connection per message cost more than the delivery
# itself (bench/). notifications/tasks.py still drops a broken or CONN_MAX_AGE-old one before a task.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# After a failed publish the web process leaves the broker alone this long (the sweeper catches up).
OUTBOX_PUBLISH_BACKOFF_S = env.float("OUTBOX_PUBLISH_BACKOFF_S", default=5.0)
# Seconds a pending outbox row waits before the sweeper re-publishes it.
OUTBOX_SWEEP_GRACE_S = env.int("OUTBOX_SWEEP_GRACE_S", default=30)
# How often beat runs the sweeper (written to django-celery-beat by `manage.py outbox_schedule`).
OUTBOX_SWEEP_INTERVAL_S = env.int("OUTBOX_SWEEP_INTERVAL_S", default=15)
# A row claimed by a worker that died is claimable again after this lease; longer than any send.
OUTBOX_CLAIM_LEASE_S = env.int("OUTBOX_CLAIM_LEASE_S", default=60)
# Transient failures: exponential backoff with jitter, base * 2**attempt capped, then give up.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_RETRY_BASE_S = env.float("OUTBOX_RETRY_BASE_S", default=2.0)
OUTBOX_RETRY_CAP_S = env.float("OUTBOX_RETRY_CAP_S", default=600.0)
# A worker waits in place for a rate-limit slot up to this long, else re-queues the message.
OUTBOX_THROTTLE_MAX_WAIT_S = env.float("OUTBOX_THROTTLE_MAX_WAIT_S", default=2.0)

# --- Metrics (project/metrics.py; README, "Metrics") ---
# Who may read /metrics (comma list of CIDRs); nginx allows the same list. Default: loopback and
# the private ranges (the compose network is 172.16.80.0/24).
METRICS_ALLOWED = env.list(
    "METRICS_ALLOWED", default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
)
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in METRICS_ALLOWED]
except ValueError as _exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED: {_exc}") from None
# The multiprocess folders /metrics adds up (the web's own and the Celery workers' on this host);
# default: this process's PROMETHEUS_MULTIPROC_DIR (prometheus-client's own variable).
METRICS_COLLECT_DIRS = env.list("METRICS_COLLECT_DIRS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
