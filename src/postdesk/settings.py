"""Django settings, derived from the typed environment configuration in `postdesk.config`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from postdesk.config import load_config

# Lets admin and generic classes be subscripted at run time (ModelAdmin[Team]) as the type stubs write them.
django_stubs_ext.monkeypatch()

CONFIG = load_config()

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = ["*"]
# The public origins (scheme://host[:port]) when a proxy rewrites the Host header; sign-in forms and the
# live-update socket both accept only their own origin or these.
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("POSTDESK_TRUSTED_ORIGINS", "").split(",") if o.strip()]
# Where agents open Postdesk: links in notification mail point here.
POSTDESK_URL = os.environ.get("POSTDESK_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "huey.contrib.djhuey",
    "django_htmx",
    "postdesk.desk",
    "postdesk.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "postdesk.urls"
ASGI_APPLICATION = "postdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# PostgreSQL connections one process may hold at once (0: no pool, one connection per thread).
DEFAULT_DB_POOL_SIZE = 10


def _whole_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number (0 or more), got {raw!r}.")
    return int(raw)


def _database() -> dict[str, Any]:
    if CONFIG.database_url:
        # Under ASGI every request may run in a new thread with its own connection; kept open, those pile up
        # until PostgreSQL refuses clients ("too many clients", seen with 20 agents), and even closed after each
        # request they reach the limit while many requests are in flight. So a web process borrows connections
        # from a pool of at most POSTDESK_DB_POOL_SIZE: a request beyond that waits for one instead of opening
        # another. `postdesk worker` sets a max age instead, for its few long-lived threads (a pool requires
        # CONN_MAX_AGE = 0).
        max_age = _whole_number("POSTDESK_DB_CONN_MAX_AGE", 0)
        pool_size = _whole_number("POSTDESK_DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE)
        db: dict[str, Any] = dict(dj_database_url.parse(CONFIG.database_url, conn_max_age=max_age))
        pooled = pool_size > 0 and max_age == 0 and db["ENGINE"] == "django.db.backends.postgresql"
        # Checked when taken from the pool or kept: a connection broken by a database restart is replaced,
        # not handed to a request.
        db["CONN_HEALTH_CHECKS"] = pooled or max_age > 0
        if pooled:
            db.setdefault("OPTIONS", {})["pool"] = {
                "min_size": min(2, pool_size),
                "max_size": pool_size,
                # How long a request waits for a free connection before it fails (PoolTimeout, a 500).
                "timeout": 30,
            }
        return db
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(CONFIG.sqlite_path),
        # Jobs close "old" connections before and after each run: without an age every mail reconnects.
        "CONN_MAX_AGE": 600,
        "OPTIONS": {
            # Without IMMEDIATE, concurrent writers fail with "database is locked" (DESIGN.md §2).
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            # FULL: a commit is on disk before we answer 250 (NORMAL may lose it on power failure in WAL mode).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский"), ("uk", "Українська"), ("fa", "فارسی"), ("zh-hans", "中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Static files (our CSS/JS, htmx) come from the installed packages: no collectstatic step for `make run`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "postdesk.api.errors.handle_exception",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
REST_KNOX = {"TOKEN_TTL": None, "AUTO_REFRESH": False}
SPECTACULAR_SETTINGS = {
    "TITLE": "Postdesk API",
    "DESCRIPTION": "Read access to conversations, messages, raw mail and attachments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}


def _huey() -> dict[str, Any]:
    if CONFIG.redis_url:
        return {
            "huey_class": "huey.PriorityRedisHuey",
            "name": CONFIG.queue_name,
            "url": CONFIG.redis_url,
            "immediate": False,
            "results": False,  # outcomes live on the ReceivedMail rows; storing them again costs a write per job
            "consumer": {"workers": 2, "worker_type": "thread"},
        }
    return {
        "huey_class": "huey.SqliteHuey",
        "name": CONFIG.queue_name,
        "filename": str(CONFIG.data_dir / "huey.sqlite3"),
        "immediate": False,
        "results": False,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }


HUEY = _huey()


def _caches() -> dict[str, Any]:
    # Sign-in throttling counts here: shared through Redis when there is one, else per process.
    if CONFIG.redis_url:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": CONFIG.redis_url,
                "KEY_PREFIX": CONFIG.queue_name,
            }
        }
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


CACHES = _caches()


def _channel_layers() -> dict[str, Any]:
    # Live updates reach every web process through Redis; without it, only the one process (`postdesk run`).
    if CONFIG.redis_url:
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [CONFIG.redis_url], "prefix": f"{CONFIG.queue_name}:live", "capacity": 1000},
            }
        }
    # The in-memory layer drops events silently past 100 per channel (DESIGN.md §2).
    return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}


CHANNEL_LAYERS = _channel_layers()

POSTDESK_SMTP_MAX_BYTES = CONFIG.smtp_max_bytes
POSTDESK_REOPEN_WINDOW_DAYS = 14
POSTDESK_SUBJECT_THREAD_WINDOW_DAYS = 30
# A sent reply waits this long in the outbox, so the agent can undo it.
POSTDESK_UNDO_SEND_SECONDS = int(os.environ.get("POSTDESK_UNDO_SEND_SECONDS", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "postdesk": {"handlers": ["console"], "level": "INFO"},
        # A 500 answers the user with a plain page; the traceback goes to the operator's log, not nowhere.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

# Triage (docs/triage.md): what a customer's mail is about, and how sure we must be to act on it.
# The languages detected (ISO 639-1, comma-separated); lingua only compares these.
POSTDESK_LANGUAGES = [
    code.strip()
    for code in os.environ.get("POSTDESK_LANGUAGES", "en,de,fr,es,it,nl,pt,ru,uk,pl,fa,ar,zh,ja").split(",")
    if code.strip()
]
# Below this confidence the classifier's category or priority is shown as a suggestion, not set.
POSTDESK_TRIAGE_MIN_CONFIDENCE = float(os.environ.get("POSTDESK_TRIAGE_MIN_CONFIDENCE", "0.6"))
# How often a process looks for new urgency terms and newly activated classifier models.
POSTDESK_TRIAGE_REFRESH_SECONDS = float(os.environ.get("POSTDESK_TRIAGE_REFRESH_SECONDS", "30"))
POSTDESK_DUPLICATE_WINDOW_HOURS = int(os.environ.get("POSTDESK_DUPLICATE_WINDOW_HOURS", "72"))
POSTDESK_INCIDENT_WINDOW_MINUTES = int(os.environ.get("POSTDESK_INCIDENT_WINDOW_MINUTES", "60"))
POSTDESK_INCIDENT_MIN_REPORTERS = int(os.environ.get("POSTDESK_INCIDENT_MIN_REPORTERS", "4"))
# `postdesk train` and the nightly retraining need at least this many agent-labelled conversations.
POSTDESK_CLASSIFIER_MIN_EXAMPLES = int(os.environ.get("POSTDESK_CLASSIFIER_MIN_EXAMPLES", "50"))

# Automation (docs/rules.md, docs/sla.md): automatic mail and calls out.
# Acknowledgements and rule replies together, per customer address and 24 hours: no mail loops, no floods.
POSTDESK_AUTO_REPLY_DAILY_LIMIT = int(os.environ.get("POSTDESK_AUTO_REPLY_DAILY_LIMIT", "3"))
# An agent's typical time per conversation: with the team's backlog, when the acknowledgement promises an answer.
POSTDESK_MEDIAN_HANDLE_MINUTES = float(os.environ.get("POSTDESK_MEDIAN_HANDLE_MINUTES", "30"))
# Rules' webhooks may call loopback and private addresses (off: a rule could reach internal services).
POSTDESK_WEBHOOK_ALLOW_PRIVATE = os.environ.get("POSTDESK_WEBHOOK_ALLOW_PRIVATE", "").strip().lower() in (
    "1",
    "true",
    "yes",
    "on",
)
