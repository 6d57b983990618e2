"""Settings for muxweb, read from the environment (every variable is listed in .env.example).

Zero configuration runs everything on a laptop: SQLite in the data directory, the django-q2 ORM
broker and the built-in simulator as the provider. DATABASE_URL and REDIS_URL switch to PostgreSQL
and Redis; MUXWEB_API_BASE and MUXWEB_API_KEY switch to a real provider.
"""

import ipaddress
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from muxweb import datadir

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    """A boolean that refuses typos: `DEBUG=ture` is an error, not False. Empty is unset: a
    `MUXWEB_HTTPS=` left in an env file keeps the default instead of turning HTTPS off."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}"
    )


def env_number(name: str, default: float, cast: type = int) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return cast(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; got {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# What muxweb writes is its own: files 0600, folders 0700, whatever umask it was started with
# (muxweb/datadir.py). MUXWEB_MEDIA_GROUP lets a web server's group read the media folder.
os.umask(0o077)
MUXWEB_MEDIA_GROUP = env_str("MUXWEB_MEDIA_GROUP")
try:
    MEDIA_GROUP_ID = datadir.media_group_id(MUXWEB_MEDIA_GROUP)
except KeyError:
    raise ImproperlyConfigured(
        f"MUXWEB_MEDIA_GROUP names no group on this machine: {MUXWEB_MEDIA_GROUP!r}"
    ) from None
DATA_DIR = Path(env_str("MUXWEB_DATA_DIR") or BASE_DIR / "data").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Installs made before, with the database readable by every local user, are tightened here.
datadir.tighten_top(DATA_DIR, MEDIA_GROUP_ID)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data directory."""
    if key := env_str("SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    try:
        # Created once, readable by this user only; processes starting together race safely.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    for _attempt in range(50):
        if key := path.read_text().strip():
            return key
        time.sleep(0.01)  # its creator is still writing it
    raise ImproperlyConfigured(f"{path} is empty: delete it or set SECRET_KEY")


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_q",
    "axes",
    "template_partials",
    # Only for its template filters (money, counts).
    "muxweb",
    "accounts",
    "videos",
    "review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before whitenoise, so that static files carry the policy too.
    "muxweb.security.content_security_policy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Everything is behind login unless a view says @login_not_required.
    "muxweb.security.LoginRequired",
    # The signed-in person's own language and time zone, over the browser's.
    "accounts.preferences.apply_preferences",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "muxweb.urls"
WSGI_APPLICATION = "muxweb.wsgi.application"

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
                "accounts.context_processors.roles",
                "videos.context_processors.notifications",
                "review.context_processors.mentions",
            ],
        },
    },
]

# Databases: SQLite in the data directory unless DATABASE_URL names another.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
else:
    _database = {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "muxweb.sqlite3"}
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and the scheduler write concurrently: WAL lets readers go on
    # during a write, IMMEDIATE takes the write lock up front (no upgrade deadlocks) and the
    # busy timeout makes a writer wait instead of failing with "database is locked".
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
    # A file, not memory, so that a worker process started by a test sees the same database.
    _database["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DATABASES = {"default": _database}
USING_SQLITE = _database["ENGINE"] == "django.db.backends.sqlite3"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }

# Background tasks. A task's timeout stays well below `retry` so that a slow task is never handed
# to a second worker while the first still runs it.
Q_CLUSTER = {
    "name": "muxweb",
    # SQLite has one writer at a time: a small cluster keeps lock waits short.
    "workers": int(env_number("MUXWEB_WORKERS", 2 if USING_SQLITE else 4)),
    "timeout": 90,
    "retry": 180,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.2,
    "label": _("Background tasks"),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "videos-gallery"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): after MUXWEB_LOGIN_FAILURE_LIMIT failures for one username from
# one address, that pair is refused for the cool-off, which every further try restarts; a
# successful login clears that pair's count. Once the username has failed
# MUXWEB_LOGIN_USERNAME_LIMIT times from all addresses together within the cool-off, it is refused
# from every address, the right password included, until the cool-off passes. Other users are not
# affected. An IPv6 address counts by its /64 (muxweb.security.client_address).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MUXWEB_LOGIN_FAILURE_LIMIT = int(env_number("MUXWEB_LOGIN_FAILURE_LIMIT", 5))
MUXWEB_LOGIN_USERNAME_LIMIT = int(env_number("MUXWEB_LOGIN_USERNAME_LIMIT", 20))
if MUXWEB_LOGIN_USERNAME_LIMIT < MUXWEB_LOGIN_FAILURE_LIMIT:
    raise ImproperlyConfigured(
        f"MUXWEB_LOGIN_USERNAME_LIMIT must be at least MUXWEB_LOGIN_FAILURE_LIMIT "
        f"({MUXWEB_LOGIN_FAILURE_LIMIT}); got {MUXWEB_LOGIN_USERNAME_LIMIT}"
    )
AXES_FAILURE_LIMIT = "muxweb.security.login_failure_limit"
AXES_COOLOFF_TIME = timedelta(minutes=env_number("MUXWEB_LOGIN_COOLOFF_MINUTES", 15, float))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "muxweb.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "muxweb.security.client_address"
# The request header in which the proxy in front puts the client's address, e.g. X-Real-IP, or
# X-Forwarded-For (its right-most entry, the one the proxy appended, counts). Empty: REMOTE_ADDR,
# and such headers are ignored, since without a proxy that sets them every client can.
MUXWEB_TRUSTED_PROXY_HEADER = env_str("MUXWEB_TRUSTED_PROXY_HEADER")
_header_letters = MUXWEB_TRUSTED_PROXY_HEADER.replace("-", "")
if MUXWEB_TRUSTED_PROXY_HEADER and not (_header_letters.isascii() and _header_letters.isalnum()):
    raise ImproperlyConfigured(
        "MUXWEB_TRUSTED_PROXY_HEADER must be a header name such as X-Real-IP; "
        f"got {MUXWEB_TRUSTED_PROXY_HEADER!r}"
    )

# HTTPS only: redirects, HSTS and cookies that never travel over plain HTTP. On unless DEBUG;
# `manage.py up` turns it off for its own processes when it serves plain HTTP on this machine.
MUXWEB_HTTPS = env_bool("MUXWEB_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = MUXWEB_HTTPS
# Load balancers and `up` check health over plain HTTP, and the simulator `up` runs posts its
# webhooks that way; webhooks are signed, so a redirect would only lose them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^webhooks/"]
# TLS ends at the proxy in front, which must set (never pass through) X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if MUXWEB_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Only allows a submission to the browsers' preload list; nothing is submitted by itself.
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = MUXWEB_HTTPS
SESSION_COOKIE_HTTPONLY = LANGUAGE_COOKIE_HTTPONLY = True
# htmx takes the CSRF token from the page (<body hx-headers>): no script needs the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Error reports star every variable named like a secret, not only settings.
DEFAULT_EXCEPTION_REPORTER_FILTER = "muxweb.security.ErrorReportFilter"
# The biggest request body taken at all (a 20 MB reference image and the form around it); the
# form says when an image is too big, this stops a multi-gigabyte body before it is read.
MUXWEB_MAX_REQUEST_BYTES = 25 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "muxweb.security.RequestSizeLimit",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Where our formats differ from Django's for a language (digit grouping in Chinese).
FORMAT_MODULE_PATH = ["muxweb.formats"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Email, for set-password links. Left unset, muxweb sends none and the admin passes links on.
EMAIL_HOST = env_str("EMAIL_HOST") or "localhost"
EMAIL_PORT = int(env_number("EMAIL_PORT", 25))
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "muxweb@localhost"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Cached videos live here. No public URL maps this directory: media.py serves it after login.
MEDIA_ROOT = DATA_DIR / "media"
# Who sends a cached file once the view has checked access: `django` itself, or the web server in
# front, told by X-Accel-Redirect (`nginx`, into the internal location MUXWEB_MEDIA_ACCEL_PREFIX
# that aliases MEDIA_ROOT, see docs/nginx.conf) or by X-Sendfile (`sendfile`: Apache, lighttpd).
MEDIA_SERVING_MODES = ("django", "nginx", "sendfile")
MUXWEB_MEDIA_SERVING = (env_str("MUXWEB_MEDIA_SERVING") or "django").lower()
if MUXWEB_MEDIA_SERVING not in MEDIA_SERVING_MODES:
    raise ImproperlyConfigured(
        f"MUXWEB_MEDIA_SERVING must be one of {', '.join(MEDIA_SERVING_MODES)}; "
        f"got {os.environ['MUXWEB_MEDIA_SERVING']!r}"
    )
MUXWEB_MEDIA_ACCEL_PREFIX = env_str("MUXWEB_MEDIA_ACCEL_PREFIX") or "/protected-media/"
# How long a finished zip export stays downloadable by the person who asked for it; then the
# file is removed (videos.exports.remove_expired_exports).
MUXWEB_ZIP_EXPORT_HOURS = env_number("MUXWEB_ZIP_EXPORT_HOURS", 24.0, float)
if not 0 < MUXWEB_ZIP_EXPORT_HOURS <= 24 * 365:
    raise ImproperlyConfigured(
        f"MUXWEB_ZIP_EXPORT_HOURS must be more than 0 and at most a year of hours; "
        f"got {MUXWEB_ZIP_EXPORT_HOURS!r}"
    )
ZIP_EXPORT_KEPT_FOR = timedelta(hours=MUXWEB_ZIP_EXPORT_HOURS)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Django logs every 4xx answer with its path ("Not Found: /s/<token>/"), and runserver every
# request line: a share link's token is starred out of both (muxweb.logfilters). gunicorn, as
# `up` starts it, keeps no access log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"share_tokens": {"()": "muxweb.logfilters.MaskShareTokens"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["share_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "videos": {"level": env_str("MUXWEB_LOG_LEVEL", "INFO"), "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# Days a job stays in the trash before it is removed for good (videos.trash.purge_trash).
MUXWEB_TRASH_DAYS = int(env_number("MUXWEB_TRASH_DAYS", 30))
if MUXWEB_TRASH_DAYS < 1:
    raise ImproperlyConfigured(f"MUXWEB_TRASH_DAYS must be at least 1; got {MUXWEB_TRASH_DAYS}")

# Jobs rendering at the provider at once, every member together; more wait inside muxweb, in fair
# order (videos.fairshare). Unset or 0: no limit of muxweb's own.
MUXWEB_PROVIDER_CONCURRENCY = int(env_number("MUXWEB_PROVIDER_CONCURRENCY", 0)) or None
if MUXWEB_PROVIDER_CONCURRENCY is not None and MUXWEB_PROVIDER_CONCURRENCY < 1:
    raise ImproperlyConfigured(
        f"MUXWEB_PROVIDER_CONCURRENCY must be at least 1, or 0 for no limit; "
        f"got {MUXWEB_PROVIDER_CONCURRENCY}"
    )

# The longest a share link may stay valid, in days (a link's default is 7, or this if shorter).
MUXWEB_SHARE_MAX_DAYS = int(env_number("MUXWEB_SHARE_MAX_DAYS", 30))
if not 1 <= MUXWEB_SHARE_MAX_DAYS <= 3650:
    raise ImproperlyConfigured(
        f"MUXWEB_SHARE_MAX_DAYS must be from 1 to 3650; got {MUXWEB_SHARE_MAX_DAYS}"
    )

# The provider. With no MUXWEB_API_BASE, `manage.py up` starts the built-in simulator on
# MUXWEB_SIMULATOR_PORT and muxweb talks to it over HTTP like to any provider.
MUXWEB_SIMULATOR_PORT = int(env_number("MUXWEB_SIMULATOR_PORT", 8765))
MUXWEB_SIMULATOR_RENDER_SECONDS = env_number("MUXWEB_SIMULATOR_RENDER_SECONDS", 20.0, float)
# Faults the built-in simulator injects, e.g. "create:hang:seconds=20;*:503:chance=0.05".
MUXWEB_SIMULATOR_FAULTS = env_str("MUXWEB_SIMULATOR_FAULTS", "")
# Content variants it serves, comma-separated: "video" plays a gateway refusing the pictures.
MUXWEB_SIMULATOR_VARIANTS = env_str("MUXWEB_SIMULATOR_VARIANTS") or "video,thumbnail,spritesheet"
# The built-in simulator's limits, like a real key's (0: none): requests per minute, and jobs
# rendering at once. Over either it answers 429 with Retry-After, as providers do.
MUXWEB_SIMULATOR_RPM = int(env_number("MUXWEB_SIMULATOR_RPM", 0))
MUXWEB_SIMULATOR_CONCURRENCY = int(env_number("MUXWEB_SIMULATOR_CONCURRENCY", 0))
MUXWEB_USE_SIMULATOR = not env_str("MUXWEB_API_BASE")
MUXWEB_API_BASE = (
    env_str("MUXWEB_API_BASE") or f"http://127.0.0.1:{MUXWEB_SIMULATOR_PORT}/v1"
).rstrip("/")
MUXWEB_API_KEY = env_str("MUXWEB_API_KEY") or ("muxweb-simulator" if MUXWEB_USE_SIMULATOR else "")
MUXWEB_WEBHOOK_SECRET = env_str("MUXWEB_WEBHOOK_SECRET")
# Several secrets, space-separated, while a provider rotates them: a signature by any one counts.
MUXWEB_WEBHOOK_SECRETS = MUXWEB_WEBHOOK_SECRET.split()
# Where the built-in simulator sends its webhooks (`manage.py up` sets it).
MUXWEB_SIMULATOR_WEBHOOK_URL = env_str("MUXWEB_SIMULATOR_WEBHOOK_URL")
# Requests per minute the provider key allows, shared by every muxweb process (0: learnt from the
# provider's x-ratelimit-* headers and its 429s). See videos/upstream/ratelimit.py.
MUXWEB_PROVIDER_RPM = int(env_number("MUXWEB_PROVIDER_RPM", 0))
if MUXWEB_PROVIDER_RPM < 0:
    raise ImproperlyConfigured(f"MUXWEB_PROVIDER_RPM must be 0 or more; got {MUXWEB_PROVIDER_RPM}")
# Off: the shared budget lets every call through and every job backs off on its own after a 429,
# as before the budget existed (the baseline of benchmarks/budget.py). On unless turned off.
MUXWEB_PROVIDER_BUDGET = env_bool("MUXWEB_PROVIDER_BUDGET", True)
# Seconds: connecting, then waiting for each read of a response.
MUXWEB_HTTP_TIMEOUT = (
    env_number("MUXWEB_CONNECT_TIMEOUT", 5.0, float),
    env_number("MUXWEB_READ_TIMEOUT", 60.0, float),
)
# Networks a download's redirect may lead into although they are not public (on-premises storage),
# e.g. "10.20.0.0/16,fd00:1::/64". Empty: loopback, private, link-local and unique-local targets
# are refused, even when the provider itself is on such an address (videos/upstream/redirects.py).
try:
    MUXWEB_REDIRECT_ALLOWED_NETWORKS = [
        ipaddress.ip_network(item, strict=False)
        for item in env_list("MUXWEB_REDIRECT_ALLOWED_NETWORKS", "")
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"MUXWEB_REDIRECT_ALLOWED_NETWORKS: {exc}") from None
