"""drfpasswordless 1.5.9, mobile only: the peer of ``POST /otp/send`` by SMS, as shipped.

Each ``POST /auth/mobile/`` (``{"mobile": "+86..."}``, a number no user has)
looks the user up by ``mobile__iexact`` (``UPPER(mobile::text) = UPPER(%s)``:
no index serves it), registers a new user (drfpasswordless's default,
``PASSWORDLESS_REGISTER_NEW_USERS``), creates the 6-digit callback token
(checking that no active token has the same key, then invalidating the user's
older tokens) and "texts" it inline with a no-op sender that formats the
message and drops it (``bench/peers/sms.py``). drfpasswordless has no rate
limits of its own; DRF's throttles are off by default and stay off.

The user model is ``bench.peers.drfpl_users`` (drfpasswordless's own test
model: ``email`` and ``mobile`` unique, nullable). ``..._indexed_settings``
adds the ``UPPER(mobile)`` index the look-up needs.
"""

from __future__ import annotations

import os

from .common_settings import *  # noqa: F403
from .common_settings import INSTALLED_APPS

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "rest_framework",
    "rest_framework.authtoken",
    "drfpasswordless",
    "bench.peers.drfpl_users",
]
AUTH_USER_MODEL = "drfpl_users.User"
ROOT_URLCONF = "bench.peers.drfpasswordless_urls"

PASSWORDLESS_AUTH = {
    "PASSWORDLESS_AUTH_TYPES": ["MOBILE"],
    "PASSWORDLESS_MOBILE_NOREPLY_NUMBER": "+15550000000",
    "PASSWORDLESS_SMS_CALLBACK": "bench.peers.sms.send_sms_with_callback_token",
}

#: Read by drfpl_users' migration 0002: whether to create the UPPER(mobile) index.
BENCH_MOBILE_UPPER_INDEX = os.environ.get("BENCH_MOBILE_UPPER_INDEX") == "1"
