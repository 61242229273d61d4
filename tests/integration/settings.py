"""The example project's settings, with the few knobs the integration tests must turn.

Everything that matters comes from the environment exactly as in production
(``DATABASE_URL``, ``REDIS_URL``, ``CELERY_BROKER_URL``, ``OTP_SMS_BACKEND``,
…; see ``example_project/settings.py``). Only timings differ: a killed worker's
task must come back within seconds, not a minute, or the test would wait for
the production value.
"""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import CELERY_BROKER_TRANSPORT_OPTIONS, CIAM_OTP

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = "integration-tests-only"  # noqa: S105
CIAM_OTP = {**CIAM_OTP, "HASH_KEY": "integration-tests-hash-key"}
# A claim older than this belongs to a dead worker (production: 30 s).
CIAM_OTP["DELIVERY_CLAIM_LEASE"] = int(os.environ.get("OTP_DELIVERY_CLAIM_LEASE", "3"))
# The shared stack's tests send codes to hundreds of fresh numbers that nobody
# verifies, which is, to the site-wide view of SMS pumping (sitewide.py), a bot
# spread thin: it would tighten the site and refuse later tests' sends. The
# view has tests of its own on a real Redis (test_sitewide_redis.py); here it is off.
CIAM_OTP["CONVERSION_MONITOR"] = {**CIAM_OTP.get("CONVERSION_MONITOR", {}), "SITE_WINDOW": 0}

# Failover tests: a small circuit, and processes that look at shared records every time.
if os.environ.get("OTP_SMS_CIRCUIT"):
    failures, window, cool_down = (int(n) for n in os.environ["OTP_SMS_CIRCUIT"].split(","))
    CIAM_OTP["SMS_CIRCUIT"] = {"FAILURES": failures, "WINDOW": window, "COOL_DOWN": cool_down}
if os.environ.get("OTP_LOOKUP_CACHE_SECONDS"):
    CIAM_OTP["LOOKUP_CACHE_SECONDS"] = int(os.environ["OTP_LOOKUP_CACHE_SECONDS"])

if os.environ.get("FAULT_TWILIO_AUTH_TOKEN"):  # fault_sms.TwilioFileBackend: receipts signed
    CIAM_OTP["TWILIO_SMS"] = {
        "ACCOUNT_SID": "AC" + "0" * 32,
        "AUTH_TOKEN": os.environ["FAULT_TWILIO_AUTH_TOKEN"],
        "FROM_NUMBER": "+15005550006",
    }

CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    # Unacknowledged tasks of a killed worker come back after 4 s, and the
    # worker looks for them every second (production: 60 s and 10 s).
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "4")),
    "unacked_restore_interval": 1,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ciam_otp": {"handlers": ["console"], "level": "INFO"}},
}
