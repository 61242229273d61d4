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
    "drf_spectacular",
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
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
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
]

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
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Fail fast when the broker is down so /otp/send can answer 503 quickly.
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "retry_on_timeout": False,
    "max_retries": 1,
    # Unacknowledged deliveries (a worker died) come back after this long.
    "visibility_timeout": 60,
}
CELERY_BEAT_SCHEDULE = {
    "purge-otp-tokens": {
        "task": "django_ciam_otp.purge_otp_tokens",
        "schedule": crontab(minute="*/15"),
    }
}

# --- django-ciam-otp -------------------------------------------------------------
CIAM_OTP: dict = {
    "HASH_KEY": os.environ.get("OTP_HASH_KEY") or None,
    "SMS_BACKEND": os.environ.get(
        "OTP_SMS_BACKEND", "django_ciam_otp.backends.sms.console.SMSBackend"
    ),
    "SMS_FILE_PATH": os.environ.get("OTP_SMS_FILE_PATH") or None,
}
if "OTP_SMS_RATE_LIMITS" in os.environ:
    CIAM_OTP["SMS_RATE_LIMITS"] = parse_rates(os.environ["OTP_SMS_RATE_LIMITS"])
if "OTP_EMAIL_RATE_LIMITS" in os.environ:
    CIAM_OTP["EMAIL_RATE_LIMITS"] = parse_rates(os.environ["OTP_EMAIL_RATE_LIMITS"])
if "OTP_CLIENT_RATE_LIMITS" in os.environ:
    CIAM_OTP["CLIENT_RATE_LIMITS"] = parse_rates(os.environ["OTP_CLIENT_RATE_LIMITS"])
if "OTP_IP_RATE_LIMITS" in os.environ:
    CIAM_OTP["IP_RATE_LIMITS"] = parse_rates(os.environ["OTP_IP_RATE_LIMITS"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ciam_otp": {"handlers": ["console"], "level": "INFO"}},
}
