"""The example project's settings plus the bench's own URL conf and no-op task.

Everything else (database, caches, broker, SMS backend, limits) comes from the
environment exactly as for the example project; ``bench/stack.py`` sets it.
"""

from __future__ import annotations

import json
import os

from example_project.settings import *  # noqa: F403
from example_project.settings import CIAM_OTP, INSTALLED_APPS

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# /bench/baseline beside everything the example project serves.
ROOT_URLCONF = "bench.urls"
# bench.tasks.noop: the floor of a Celery task on the same broker.
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]

# The attack simulation plays many callers behind one reverse proxy: the
# per-IP limits count the address in X-Forwarded-For, as a site behind a proxy
# configures it (docs/production.md).
if os.environ.get("BENCH_TRUST_X_FORWARDED_FOR"):
    RATELIMIT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"

# Trying other defaults in the attack simulation (never set by `make bench`):
# BENCH_CIAM_OTP='{"PREFIX_LENGTH": 8, "CONVERSION_MONITOR": {"MIN_SENDS": 5}}'
if os.environ.get("BENCH_CIAM_OTP"):
    for key, value in json.loads(os.environ["BENCH_CIAM_OTP"]).items():
        if isinstance(value, dict):
            value = {**CIAM_OTP.get(key, {}), **value}
        CIAM_OTP[key] = value
