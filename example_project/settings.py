"""Settings for the example project, read from the environment (SPEC.md section 6).

Defaults give the embedded demo: SQLite, a local-memory cache, Celery tasks
run eagerly in-process, and codes printed on the console.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from django_ciam_otp.ratelimits import parse_rates

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_ciam_otp",
    "example_project.demo",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60
    )
}

REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # Rate-limit counters: a Redis that does not answer within half a
            # second is down (503, or uncounted sends with OTP_RATE_LIMIT_FAIL_OPEN).
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # One process serves the demo, so its per-process counters are exact.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # Log in with a usage=login code: authenticate(request, otp_token=..., otp=..., email=...)
    "django_ciam_otp.backends.auth.OTPBackend",
]
# The demo's pages (example_project/demo) for end users.
LOGIN_URL = "demo:login"
LOGIN_REDIRECT_URL = "demo:account"
LOGOUT_REDIRECT_URL = "demo:home"
# Auth sources the code-login page names (usage=login needs one); load_demo_data creates them.
DEMO_LOGIN_AUTH_SOURCES = {
    "sms": os.environ.get("MOCK_SMS_OTP_AUTH_SOURCE_ID", "MOCK_SMS_OTP_AUTH_SOURCE_ID"),
    "email": os.environ.get("MOCK_EMAIL_OTP_AUTH_SOURCE_ID", "MOCK_EMAIL_OTP_AUTH_SOURCE_ID"),
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "no-reply@example.com")

# --- Celery -------------------------------------------------------------------
# Production: CELERY_BROKER_URL=redis://..., `celery -A example_project worker`
# on any number of machines, and one `celery -A example_project beat` (see
# docs/production.md). Without a broker the demo runs tasks in-process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged after it ran, so a worker that dies mid-delivery
# leaves it to be delivered again (delivery.py makes the second run harmless).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection before and after every
# task unless told to reuse it: each delivery would open a new PostgreSQL
# connection (2.5x fewer deliveries per second on the bench machine).
CELERY_DB_REUSE_MAX = 1000
# Publishing from /otp/send must fail fast when the broker is down, so the
# caller gets 503 temporarily_unavailable instead of a hung request. Each try
# waits at most socket_timeout, and CIAM_OTP["PUBLISH_RETRY_POLICY"] (2
# retries) adds tries: about 0.2 s when the broker refuses connections and
# (retries + 2) x 0.5 s = 2.2 s when it accepts them but never answers.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 0.5,
    "socket_timeout": 0.5,
    "retry_on_timeout": False,
    # Unacknowledged deliveries (their worker died) go back to the queue after
    # this long. Keep it above the longest countdown a task waits for (backoff
    # cap 20 s, claim lease 25 s) and well below the code validity (60 s), or
    # the code expires before its redelivery.
    "visibility_timeout": 35,
    # Look for such deliveries every 5 s (kombu's default is every 100 s).
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "health_check_interval": 10,
}
CELERY_BEAT_SCHEDULE = {
    "purge-otp-tokens": {
        "task": "django_ciam_otp.purge_otp_tokens",
        "schedule": crontab(minute="*/15"),
    },
    # The outbox's sweep: a code whose wake-up was lost still goes out (docs/celery.md).
    "deliver-otp-outbox": {
        "task": "django_ciam_otp.deliver_due",
        "schedule": 10.0,
    },
}

# --- django-ciam-otp -------------------------------------------------------------
CIAM_OTP: dict = {
    "HASH_KEY": os.environ.get("OTP_HASH_KEY") or None,
    "SMS_BACKEND": os.environ.get(
        "OTP_SMS_BACKEND", "django_ciam_otp.backends.sms.console.SMSBackend"
    ),
    # OTP_SMS_BACKENDS (comma-separated dotted paths, in failover order) wins over it.
    "SMS_BACKENDS": [
        path.strip() for path in os.environ.get("OTP_SMS_BACKENDS", "").split(",") if path.strip()
    ]
    or None,
    "SMS_FILE_PATH": os.environ.get("OTP_SMS_FILE_PATH") or None,
    # The client the demo's own pages send and verify codes as (load_demo_data creates it).
    "SITE_CLIENT_ID": os.environ.get("OTP_SITE_CLIENT_ID", "DEMO_SITE_CLIENT"),
    # Who owns an email address (User.email) or a mobile number (demo.Profile).
    "USER_LOOKUP": "example_project.demo.users.find_user",
    "USER_ADDRESS": "example_project.demo.users.address_of",
}
if os.environ.get("TENCENTCLOUD_SECRET_ID"):
    # Tencent Cloud SMS (OTP_SMS_BACKEND=django_ciam_otp.backends.sms.tencent.SMSBackend),
    # with the same variable names as the backend's live test.
    CIAM_OTP["TENCENT_SMS"] = {
        "SECRET_ID": os.environ["TENCENTCLOUD_SECRET_ID"],
        "SECRET_KEY": os.environ.get("TENCENTCLOUD_SECRET_KEY"),
        "REGION": os.environ.get("TENCENTCLOUD_SMS_REGION", "ap-guangzhou"),
        "SDK_APP_ID": os.environ.get("TENCENTCLOUD_SMS_SDK_APP_ID"),
        "SIGN_NAME": os.environ.get("TENCENTCLOUD_SMS_SIGN_NAME"),
        "TEMPLATE_IDS": {"default": os.environ.get("TENCENTCLOUD_SMS_TEMPLATE_ID")},
        "RECEIPT_SECRET": os.environ.get("TENCENTCLOUD_SMS_RECEIPT_SECRET") or None,
    }
if os.environ.get("TWILIO_ACCOUNT_SID"):
    # Twilio (django_ciam_otp.backends.sms.twilio.SMSBackend), as its live test names them.
    CIAM_OTP["TWILIO_SMS"] = {
        "ACCOUNT_SID": os.environ["TWILIO_ACCOUNT_SID"],
        "AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN"),
        "FROM_NUMBER": os.environ.get("TWILIO_FROM_NUMBER") or None,
        "MESSAGING_SERVICE_SID": os.environ.get("TWILIO_MESSAGING_SERVICE_SID") or None,
        "STATUS_CALLBACK": os.environ.get("TWILIO_STATUS_CALLBACK") or None,
    }
if os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
    # Alibaba Cloud SMS (django_ciam_otp.backends.sms.aliyun.SMSBackend).
    CIAM_OTP["ALIYUN_SMS"] = {
        "ACCESS_KEY_ID": os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        "ACCESS_KEY_SECRET": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        "SIGN_NAME": os.environ.get("ALIYUN_SMS_SIGN_NAME"),
        "TEMPLATE_CODES": {"default": os.environ.get("ALIYUN_SMS_TEMPLATE_CODE")},
        "RECEIPT_SECRET": os.environ.get("ALIYUN_SMS_RECEIPT_SECRET") or None,
    }
# AWS SNS (django_ciam_otp.backends.sms.sns.SMSBackend) takes boto3's own environment
# (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION) and needs no block here.
if "OTP_SMS_RATE_LIMITS" in os.environ:
    CIAM_OTP["SMS_RATE_LIMITS"] = parse_rates(os.environ["OTP_SMS_RATE_LIMITS"])
if "OTP_EMAIL_RATE_LIMITS" in os.environ:
    CIAM_OTP["EMAIL_RATE_LIMITS"] = parse_rates(os.environ["OTP_EMAIL_RATE_LIMITS"])
if "OTP_CLIENT_RATE_LIMITS" in os.environ:
    CIAM_OTP["CLIENT_RATE_LIMITS"] = parse_rates(os.environ["OTP_CLIENT_RATE_LIMITS"])
if "OTP_IP_RATE_LIMITS" in os.environ:
    CIAM_OTP["IP_RATE_LIMITS"] = parse_rates(os.environ["OTP_IP_RATE_LIMITS"])
if "OTP_PREFIX_RATE_LIMITS" in os.environ:
    # Sends per 9-digit number block (SMS pumping defence); "" turns it off, e.g.
    # for load tests that send to consecutive numbers.
    CIAM_OTP["PREFIX_RATE_LIMITS"] = parse_rates(os.environ["OTP_PREFIX_RATE_LIMITS"])
if "OTP_CONVERSION_MONITOR" in os.environ:
    # Off for load tests whose codes are never verified (they look like pumping).
    CIAM_OTP["CONVERSION_MONITOR"] = {"ENABLED": env_bool("OTP_CONVERSION_MONITOR", True)}
if "OTP_RATE_LIMIT_FAIL_OPEN" in os.environ:
    # When Redis (the counters) is down: False answers 503, True sends uncounted.
    CIAM_OTP["RATE_LIMIT_FAIL_OPEN"] = env_bool("OTP_RATE_LIMIT_FAIL_OPEN", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ciam_otp": {"handlers": ["console"], "level": "INFO"}},
}
