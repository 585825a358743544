"""Settings for the live-commerce partner API.

One settings module, read from the environment (twelve-factor). With nothing set the service
runs on embedded defaults: a SQLite file next to the code and Celery tasks run in-process, so a
newcomer needs nothing but Python. Production sets ``DATABASE_URL`` (PostgreSQL),
``CELERY_BROKER_URL`` (Redis), ``SECRET_KEY`` and ``DEBUG=false``; nothing exists only in
production settings.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEVELOPMENT_SECRET_KEY = "dev-insecure-live-commerce-key-do-not-use-in-production"  # noqa: S105

# DEBUG is off unless the environment says DEBUG=true (scripts/dev.sh does). With DEBUG off the
# development key is refused: at once when DEBUG=false is explicit, and, when DEBUG is not set
# at all, as soon as the service is about to serve (livecommerce/wsgi.py), so management
# commands (migrate, makemigrations --check) still run with nothing set.
DEBUG_IS_SET = "DEBUG" in env.ENVIRON
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
USES_DEVELOPMENT_KEY = SECRET_KEY == DEVELOPMENT_SECRET_KEY
DEVELOPMENT_KEY_REFUSED = (
    "SECRET_KEY is the development key; set SECRET_KEY in the environment when DEBUG is off "
    "(or DEBUG=true for local development)."
)
if not DEBUG and USES_DEVELOPMENT_KEY and DEBUG_IS_SET:
    raise ImproperlyConfigured(DEVELOPMENT_KEY_REFUSED)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_prometheus",
    "axes",
    "livecommerce",
    "audit",
    "partners",
    "orders",
    "commissions",
]

MIDDLEWARE = [
    "livecommerce.logs.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "livecommerce.middleware.ResponseHeadersMiddleware",
    "livecommerce.middleware.MetricsAccessMiddleware",
    "livecommerce.middleware.RequestSizeLimitMiddleware",
    "livecommerce.middleware.RejectNulCharactersMiddleware",
    "livecommerce.idempotency.IdempotencyMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out admin login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

# Admin logins are rate-limited per client address by django-axes: after AXES_FAILURE_LIMIT
# failures the address is locked out for AXES_COOLOFF_TIME (the API's keys are throttled
# apart, in partners/throttling.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

ROOT_URLCONF = "livecommerce.urls"
WSGI_APPLICATION = "livecommerce.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves concurrent requests too: every transaction takes SQLite's
    # write lock up front (select_for_update is a no-op there, so this is what serialises
    # inventory and status changes) and waits for it instead of failing with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# How many runs of a statement's text prepare it inside ``prepared_statements`` (None: never).
PREPARE_THRESHOLD: int | None = None
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # DATABASE_POOL=true (off by default; docs/benchmarks.md says what it measured): Django's own
    # pool of psycopg 3 connections in each process (psycopg-pool), sized
    # DATABASE_POOL_MIN_SIZE..DATABASE_POOL_MAX_SIZE, a request waiting at most
    # DATABASE_POOL_TIMEOUT seconds for one; a pool needs CONN_MAX_AGE 0 (the pool keeps them).
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        _db_options["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=4),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
    # Server-side binding (on by default): psycopg sends the parameters apart from the text, which
    # lets the order path's statements be prepared (``livecommerce.rows.prepared_statements``: a
    # statement run PREPARE_THRESHOLD times on a connection inside it is parsed and planned once,
    # its later runs reuse the plan). Only there: reports and settlement runs plan every run for
    # its own date range (a generic plan made a year's report 5x slower at p95).
    # DATABASE_PREPARE_THRESHOLD=off prepares nothing; DATABASE_SERVER_SIDE_BINDING=false goes back
    # to client-side binding (behind a pooler in transaction mode that does not track prepared
    # statements, such as PgBouncer before 1.21 or without max_prepared_statements).
    if env.bool("DATABASE_SERVER_SIDE_BINDING", default=True):
        _db_options["server_side_binding"] = True
        _prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip().lower()
        if _prepare_threshold not in ("", "off", "none"):
            PREPARE_THRESHOLD = int(_prepare_threshold)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app folders when collectstatic has not run (development, tests).
WHITENOISE_USE_FINDERS = True

# Request bodies: the API takes small JSON documents; anything larger is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1_048_576)

# Security headers. HTTPS redirects and HSTS are for deployments behind TLS.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
# HTML pages (docs, chart): everything from this service. Redoc styles inline and runs a worker
# from a blob: URL; nothing else needs more.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
)
# /metrics: for a scraper showing METRICS_TOKEN as a Bearer token, or from these networks
# (comma-separated CIDRs); with neither, nobody.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# `check --deploy` also generates the OpenAPI schema and reports drf-spectacular's warnings as
# W001; the only ones are the hash-suffixed names of error-code enums that drf-standardized-errors
# shares between operations (cosmetic). The schema itself is validated by tests/test_schema.py
# and fuzzed by tests/security/test_fuzz.py; `manage.py spectacular` still prints the warnings.
SILENCED_SYSTEM_CHECKS = ["drf_spectacular.W001"]

# --- Domain settings -------------------------------------------------------------------------
RETURN_WINDOW_DAYS = env.int("RETURN_WINDOW_DAYS", default=14)
# Live drops: an unpaid order holds its units this long (a live session's hold_seconds wins);
# beat sends the expiry task every ORDER_EXPIRY_INTERVAL seconds (default 5, read by
# livecommerce/celery.py). The live feed reads its session's
# changes every LIVE_FEED_POLL_SECONDS; under WSGI (runserver, gunicorn) a feed ends after
# LIVE_FEED_SYNC_SECONDS so it never holds a web worker for long (clients resume by Last-Event-ID).
ORDER_HOLD_SECONDS = env.int("ORDER_HOLD_SECONDS", default=900)
LIVE_FEED_POLL_SECONDS = env.float("LIVE_FEED_POLL_SECONDS", default=1.0)
LIVE_FEED_SYNC_SECONDS = env.float("LIVE_FEED_SYNC_SECONDS", default=300.0)
LIVE_FEED_KEEPALIVE_SECONDS = env.float("LIVE_FEED_KEEPALIVE_SECONDS", default=15.0)
LIVE_FEED_DB_THREADS = env.int("LIVE_FEED_DB_THREADS", default=4)
# An open feed re-checks its caller this often: a revoked or expired key, a suspended partner or
# a host app taken off the show has its stream ended.
LIVE_FEED_RECHECK_SECONDS = env.float("LIVE_FEED_RECHECK_SECONDS", default=5.0)
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
# Ports a webhook URL may name (public addresses); loopback/private ones with the setting above
# may use any port.
WEBHOOK_ALLOWED_PORTS = env.list("WEBHOOK_ALLOWED_PORTS", cast=int, default=[443])
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# A request still "in progress" after this long is taken to have died with its process.
IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=env.int("IDEMPOTENCY_LOCK_TIMEOUT", default=60))
API_KEY_LAST_USED_RESOLUTION = timedelta(seconds=60)
# Seconds a client is asked to wait (Retry-After) when the database or broker is unreachable.
SERVICE_UNAVAILABLE_RETRY_AFTER = env.int("SERVICE_UNAVAILABLE_RETRY_AFTER", default=2)

# Failed API authentications per client address (partners/throttling.py); over it, 429.
FAILED_AUTH_RATE = env.str("FAILED_AUTH_RATE", default="20/min")

# --- Django REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["partners.authentication.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["partners.permissions.IsAuthenticatedCaller"],
    "DEFAULT_PARSER_CLASSES": ["livecommerce.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "livecommerce.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "livecommerce.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["partners.throttling.APIKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_KEY_RATE", default="6000/min")},
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "livecommerce.errors.ExceptionHandler",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "406", "415", "429"],
}

_SE = "drf_standardized_errors.openapi_serializers."
SPECTACULAR_SETTINGS = {
    "TITLE": "Live-commerce partner API",
    "DESCRIPTION": (
        "Live shopping between the platform, host apps, fulfillment partners, brands and "
        "creators: catalog, live sessions, orders, the commission ledger, settlements, "
        "webhooks and finance reports. Authenticate with `Authorization: Bearer <key>`. "
        "Every POST accepts an `Idempotency-Key` header. Errors share one format: "
        '`{"type": ..., "errors": [{"code", "detail", "attr"}]}`.'
    ),
    "VERSION": "1.0.0",
    "LICENSE": {
        "name": "Proprietary: for the platform's partners",
        "url": "https://example.com/partner-terms",
    },
    "CONTACT": {"name": "Partner integrations", "email": "integrations@example.com"},
    # Relative: the schema's own host, wherever the service runs (the demo, staging, prod).
    "SERVERS": [{"url": "/", "description": "This service (the host serving this schema)"}],
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ValidationErrorEnum": _SE + "ValidationErrorEnum.choices",
        "ClientErrorEnum": _SE + "ClientErrorEnum.choices",
        "ServerErrorEnum": _SE + "ServerErrorEnum.choices",
        "ErrorCode401Enum": _SE + "ErrorCode401Enum.choices",
        "ErrorCode403Enum": _SE + "ErrorCode403Enum.choices",
        "ErrorCode404Enum": _SE + "ErrorCode404Enum.choices",
        "ErrorCode405Enum": _SE + "ErrorCode405Enum.choices",
        "ErrorCode406Enum": _SE + "ErrorCode406Enum.choices",
        "ErrorCode415Enum": _SE + "ErrorCode415Enum.choices",
        "ErrorCode429Enum": _SE + "ErrorCode429Enum.choices",
        "ErrorCode500Enum": _SE + "ErrorCode500Enum.choices",
        "PartnerKindEnum": "partners.choices.PartnerKind.choices",
        "PartnerStatusEnum": "partners.choices.PartnerStatus.choices",
        "StaffRoleEnum": "partners.choices.StaffRole.choices",
        "SettlementStatusEnum": "commissions.settlements.models.SettlementStatus.choices",
        "SettlementRunStatusEnum": "commissions.settlements.models.SettlementRunStatus.choices",
        "LedgerEntryKindEnum": "commissions.choices.EntryKind.choices",
        "WebhookEndpointStatusEnum": "partners.webhooks.choices.WebhookEndpointStatus.choices",
        "WebhookDeliveryStatusEnum": "partners.webhooks.choices.WebhookDeliveryStatus.choices",
        "OrderStatusEnum": "orders.choices.OrderStatus.choices",
        "LiveSessionStatusEnum": "orders.choices.LiveSessionStatus.choices",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "livecommerce.schema.postprocess_stable_enum_names",
        "livecommerce.schema.postprocess_nullable",
        "livecommerce.schema.postprocess_strict_input",
        "livecommerce.schema.postprocess_tag_order",
        "partners.webhooks.examples.postprocess_event_types",
        "livecommerce.schema.postprocess_service_unavailable",
    ],
    # In the order a host app meets them; ops and audit come last.
    "TAGS": [
        {
            "name": "directory",
            "description": "Who you are (`GET /me`) and the partners you deal with: a host app "
            "sees the brands it may sell, their fulfillment partners and its creators.",
        },
        {
            "name": "catalog",
            "description": "Products with price, currency and inventory, kept by a brand's "
            "fulfillment partner (or the brand). `?expand=brand` embeds the brand's name.",
        },
        {
            "name": "live sessions",
            "description": "Live shows a creator hosts, broadcast on host apps: schedule, "
            "start, end.",
        },
        {
            "name": "orders",
            "description": "Place and pay orders (host app), fulfil them (fulfillment "
            "partner), cancel and refund; each order's history.",
        },
        {
            "name": "webhooks",
            "description": "Endpoints that receive signed events (Standard Webhooks), their "
            "deliveries, a test event on demand and a replay of a time window.",
        },
        {
            "name": "events",
            "description": "Every event you may see, to catch up after an outage.",
        },
        {
            "name": "commissions",
            "description": "Where an order's money went (breakdown) and the commission plans "
            "that split it.",
        },
        {
            "name": "ledger",
            "description": "The double-entry ledger and balances (pending, available, paid out).",
        },
        {
            "name": "settlements",
            "description": "Payouts to partners: runs, settlements and their lines (finance).",
        },
        {
            "name": "reports",
            "description": "Commission reports for finance, as JSON or CSV, and a chart link.",
        },
        {
            "name": "partners",
            "description": "Onboarding for ops: create and suspend partners, payout schedules, "
            "brand enrollments with invite-only host apps.",
        },
        {
            "name": "api keys",
            "description": "Issue (shown once) and revoke partners' API keys (ops).",
        },
        {
            "name": "audit",
            "description": "Who changed what: the staff audit trail.",
        },
    ],
}

# --- Celery ----------------------------------------------------------------------------------
# No broker configured: tasks run in-process (eager), so the service works with nothing else.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "partners.tasks.*": {"queue": "webhooks"},
    "commissions.tasks.settlement_*": {"queue": "settlements"},
}
# Socket timeouts: without them a publish to a broker that hangs (accepts the connection, never
# answers) waits forever, and so does the web request that queued it (tests/system showed it).
# With one publish retry a broker that is down or hung costs a request at most a few seconds; the
# outbox keeps the deliveries and the sweeper queues them once it is back.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {}
# Workers and beat log through LOGGING below (JSON lines with the request id), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # JSON lines by default (python-json-logger), each with the request id; LOG_FORMAT=plain
    # for a terminal.
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"redact_secrets": {"()": "livecommerce.log_filters.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="json"),
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # One line per answered request (method, path, status, duration_ms, request_id).
        "livecommerce.request": {"level": env.str("ACCESS_LOG_LEVEL", default="INFO")},
    },
}
