"""Settings for Lifecycle Console, driven by environment variables.

One module serves development, tests and production. ``CONSOLE_ENV=production``
switches on the production posture: a required ``SECRET_KEY`` and encryption key,
``DEBUG`` off, secure cookies, HSTS and HTTPS redirects.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CONSOLE_DATA_DIR", BASE_DIR / "var")).resolve()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


CONSOLE_ENV = os.environ.get("CONSOLE_ENV", "development").strip().lower()
if CONSOLE_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured("CONSOLE_ENV must be development, production or test")
PRODUCTION = CONSOLE_ENV == "production"


def local_secret(filename: str, generate: Callable[[], str]) -> str:
    """Read a development secret from the data folder, generating it on first use.

    Production never reaches this: there the value must come from the environment.
    """
    path = DATA_DIR / filename
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    value = generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def required_secret(name: str, filename: str, generate: Callable[[], str]) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set in production")
    return local_secret(filename, generate)


SECRET_KEY = required_secret("SECRET_KEY", "secret-key", lambda: secrets.token_urlsafe(50))
# Fernet keys, comma separated: the first encrypts, all decrypt (key rotation).
ENCRYPTION_KEYS = [
    key.strip()
    for key in required_secret("ENCRYPTION_KEYS", "encryption-key", lambda: Fernet.generate_key().decode()).split(",")
]
DEBUG = env_bool("DEBUG", default=not PRODUCTION and CONSOLE_ENV != "test")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "console.core",
    "console.accounts",
    "console.audit",
    "console.web",
    "console.scim",
    "integrations",
    "provisioning",
    "lifecycle",
    "reconciliation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "console.accounts.access.ApiKeyAuthenticationMiddleware",
    "console.core.time_zones.ViewerTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "console.accounts.password_policy.PasswordChangeRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "console.accounts.access.AccessPolicyMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"
ASGI_APPLICATION = "console.asgi.application"

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
                "console.web.context_processors.navigation",
                "provisioning.context_processors.approvals",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'console.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # Web, worker and beat share the file: wait for locks instead of failing, and
        # let readers run beside the writer.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests that start a real worker need a file the worker can open.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-console.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: shared by every process (throttles, rate limits) ----------------------------
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "console_cache"}}

# --- People and sign-in ---------------------------------------------------------------
AUTH_USER_MODEL = "accounts.Person"
AUTHENTICATION_BACKENDS = ["console.accounts.backends.PersonBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins allowed per window before further attempts are refused.
SIGN_IN_THROTTLE_WINDOW_SECONDS = env_int("SIGN_IN_THROTTLE_WINDOW_SECONDS", 15 * 60)
SIGN_IN_MAX_FAILURES_PER_ACCOUNT = env_int("SIGN_IN_MAX_FAILURES_PER_ACCOUNT", 5)
SIGN_IN_MAX_FAILURES_PER_ADDRESS = env_int("SIGN_IN_MAX_FAILURES_PER_ADDRESS", 30)
# Addresses of reverse proxies whose X-Forwarded-For is believed.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 60 * 60)

# Requests per minute allowed to each API key on /scim/v2 (0: no limit).
SCIM_RATE_LIMIT_PER_MINUTE = env_int("SCIM_RATE_LIMIT_PER_MINUTE", 1200)

# --- Provisioning actions -----------------------------------------------------------------
ACTION_APPROVAL_EXPIRY_HOURS = env_int("ACTION_APPROVAL_EXPIRY_HOURS", 72)
ACTION_MAX_ATTEMPTS = env_int("ACTION_MAX_ATTEMPTS", 6)
# A running action whose worker has been silent this long is taken over by another.
ACTION_LEASE_SECONDS = env_int("ACTION_LEASE_SECONDS", 300)
# This many failed attempts in a row quarantine an integration until an admin resumes it.
ACTION_QUARANTINE_AFTER = env_int("ACTION_QUARANTINE_AFTER", 10)
# Actions queued together (a bulk request) go to the workers in messages of up to this many;
# a worker claims each message's actions at once and runs them one after another.
ACTION_BATCH_SIZE = env_int("ACTION_BATCH_SIZE", 100)
# A worker running a batch writes the outcomes it has at least this often (seconds).
ACTION_WRITE_SECONDS = env_float("ACTION_WRITE_SECONDS", 0.5)
# Access requested for a time ends at most this many days ahead; beat ends up to this many
# due requests a run (and sends itself again while more are due).
ACCESS_REQUEST_MAX_DAYS = env_int("ACCESS_REQUEST_MAX_DAYS", 365)
ACCESS_REQUEST_END_BATCH = env_int("ACCESS_REQUEST_END_BATCH", 200)
# A drift computation still "running" after this many seconds is taken for lost (its worker
# died): it no longer holds the integration's lock.
DRIFT_LEASE_SECONDS = env_int("DRIFT_LEASE_SECONDS", 900)
# A plan of more drift items than this is made by a worker (in the background), not in the request.
PLAN_BACKGROUND_AFTER = env_int("PLAN_BACKGROUND_AFTER", 500)
# Lifecycle automation takes at most this many identity events per policy in one transaction.
LIFECYCLE_EVENT_BATCH = env_int("LIFECYCLE_EVENT_BATCH", 1000)
# A burst of identity events is taken whole: the consumer waits until no event came for this
# long (seconds), but never longer than the second figure after a burst's first event.
LIFECYCLE_SETTLE_SECONDS = env_float("LIFECYCLE_SETTLE_SECONDS", 1.0)
LIFECYCLE_SETTLE_MAX_SECONDS = env_float("LIFECYCLE_SETTLE_MAX_SECONDS", 5.0)
# An identity event's id is handed out before its transaction commits: a gap in the ids
# younger than this may still be filled, and the consumer waits for it.
LIFECYCLE_LATE_COMMIT_SECONDS = env_float("LIFECYCLE_LATE_COMMIT_SECONDS", 5.0)
# Automated deprovisions of this many seconds back count with new ones against the mass-change limit.
LIFECYCLE_BURST_WINDOW_SECONDS = env_int("LIFECYCLE_BURST_WINDOW_SECONDS", 600)

# --- Extraction -----------------------------------------------------------------------------
# A running extraction whose worker has not renewed its heartbeat this long is failed as lost
# (a page, with its retries and waits, takes well under this); a queued one that no worker
# has started this long is failed too (its message was lost). Either way the next can start.
EXTRACTION_LEASE_SECONDS = env_int("EXTRACTION_LEASE_SECONDS", 600)
EXTRACTION_QUEUED_MAX_SECONDS = env_int("EXTRACTION_QUEUED_MAX_SECONDS", 60 * 60)
# How often a running extraction writes what it has read (with its progress); 0: after every page.
EXTRACTION_WRITE_SECONDS = env_float("EXTRACTION_WRITE_SECONDS", 0.5)
# On PostgreSQL, what was read is written by a thread beside the reads (integrations.extraction.writer),
# so the database stores one batch while the next pages arrive; off: each batch is written
# before the next page is asked for.
EXTRACTION_BACKGROUND_WRITES = env_bool("EXTRACTION_BACKGROUND_WRITES", True)

# --- Security ---------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Static files -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", DATA_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic fills it in production
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end packages come from the npm registry at set-up (package-lock.json).
    ("htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
# Outside production the files are looked up when asked for, as under DEBUG. Otherwise
# every start of the middleware reads all of them (node_modules included), and the test
# client starts it afresh for each client it makes: that read was most of the suite's
# time spent in requests.
WHITENOISE_AUTOREFRESH = not PRODUCTION

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["console.formats"]

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.accounts.access.ApiKeyAuthentication",
        "console.accounts.access.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["console.accounts.access.ConsolePermission"],
    "DEFAULT_PAGINATION_CLASS": "console.core.pagination.KeysetApiPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.core.api.exception_handler",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lifecycle Console API",
    "DESCRIPTION": "Identity lifecycle for SCIM 2.0 applications. Authenticate with "
    "`Authorization: Bearer <API key>` or a signed-in session.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ActionStateEnum": "provisioning.models.ActionState",
        "AccessRequestStateEnum": "provisioning.models.AccessRequest.State",
        "TransformerSourceEnum": "provisioning.models.AttributeTransformer.Source",
        "PersonSourceEnum": "console.accounts.models.Source",
        "DriftCategoryEnum": "reconciliation.models.DriftCategory",
        "PlanStateEnum": "reconciliation.models.Plan.State",
    },
}

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{DATA_DIR / 'celery-broker.sqlite3'}"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Leavers first: deprovisions go to their own queue, which every worker reads before the
# default one (strictly on Redis, by ``queue_order_strategy``; in turn on other brokers).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("leavers"), Queue("celery"))
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"queue_order_strategy": "priority"} if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else {}
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The SQLAlchemy transport hands its options to create_engine; the channel polls each second.
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Periodic work that beat sends to the workers. Apps add their entries here.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "sessions-clear-expired": {"task": "console.core.tasks.sessions_clear_expired", "schedule": 60 * 60},
    "counters-delete-ended": {"task": "console.core.tasks.counters_delete_ended_task", "schedule": 60 * 60},
    "extractions-dispatch-due": {"task": "integrations.tasks.extractions_dispatch_due", "schedule": 60},
    "extractions-recover": {"task": "integrations.tasks.extractions_recover_task", "schedule": 60},
    "actions-recover": {"task": "provisioning.tasks.actions_recover_task", "schedule": 60},
    "actions-expire": {"task": "provisioning.tasks.actions_expire_task", "schedule": 5 * 60},
    "access-requests-end-due": {"task": "provisioning.tasks.access_requests_end_due_task", "schedule": 60},
    # Identity events are consumed as they commit; this sweep catches a lost message.
    "lifecycle-consume": {"task": "lifecycle.tasks.lifecycle_consume_task", "schedule": 30},
    "lifecycle-retention": {"task": "lifecycle.tasks.lifecycle_retention_task", "schedule": 60 * 60},
}
CELERY_TASK_ALWAYS_EAGER = False  # never eager: a real worker runs the tasks
# A worker writes a heartbeat this often; /readyz wants one newer than the max age.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10)
WORKER_HEARTBEAT_MAX_AGE_SECONDS = env_int("WORKER_HEARTBEAT_MAX_AGE_SECONDS", 60)

# --- Logging ----------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "console.core.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request at INFO: a line a page while extracting, with URLs whose
        # filters carry user names. Actions keep their calls in their own log instead.
        "httpx": {"level": "WARNING"},
    },
}
