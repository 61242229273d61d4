"""The Twilio backend's own settings: ``CIAM_OTP["TWILIO_SMS"]`` and its defaults.

They belong to the backend, not to the core table (``django_ciam_otp.conf``):
the backend reads each entry with ``backend_setting`` (a lower-cased keyword
argument overrides it), its checks compare the dict with :data:`DEFAULTS`, and
``docs/sms/twilio.md`` documents every entry (a test keeps the two equal).
"""

from __future__ import annotations

from typing import Any, Final

#: The ``CIAM_OTP`` key of the dict (``SMSBackend.settings_key``).
SETTINGS_KEY: Final = "TWILIO_SMS"

DEFAULTS: Final[dict[str, Any]] = {
    # The account the messages belong to (AC...), always needed.
    "ACCOUNT_SID": None,
    # Authenticates the API calls (unless an API key is set) and validates the
    # X-Twilio-Signature of status callbacks (always).
    "AUTH_TOKEN": None,
    # An API key (SK...) and its secret authenticate the API calls instead.
    "API_KEY_SID": None,
    "API_KEY_SECRET": None,
    # Exactly one sender: a Twilio number (E.164), a short code or an
    # alphanumeric sender ID; or a Messaging Service (MG...), which picks one.
    "FROM_NUMBER": None,
    "MESSAGING_SERVICE_SID": None,
    # The public https URL of this site's /otp/receipts/twilio/, sent as
    # StatusCallback and used to check the callbacks' signatures.
    "STATUS_CALLBACK": None,
    # Seconds a message may wait in Twilio's queue: True is the code's own
    # validity, an int 1-36000 that many seconds, None Twilio's default (10 h).
    "VALIDITY_PERIOD": True,
    # Twilio Region ("ie1", "au1") and edge ("dublin", "sydney"); None: US1.
    "REGION": None,
    "EDGE": None,
    # Seconds for connecting and again for the answer (one call: twice at most).
    "TIMEOUT": 5,
}
