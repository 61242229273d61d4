"""The SNS backend's own settings: ``CIAM_OTP["SNS_SMS"]`` and its defaults.

They belong to the backend, not to the core table (``django_ciam_otp.conf``):
the backend reads each entry with ``backend_setting`` (a lower-cased keyword
argument overrides it, so two ``SMS_BACKENDS`` entries can use two accounts or
regions), its checks compare the dict with :data:`DEFAULTS`, and
``docs/sms/sns.md`` documents every entry (a test keeps the two equal).
"""

from __future__ import annotations

from typing import Any, Final

#: The ``CIAM_OTP`` key of the dict (``SMSBackend.settings_key``).
SETTINGS_KEY: Final = "SNS_SMS"

DEFAULTS: Final[dict[str, Any]] = {
    # None: boto3's own lookup (AWS_DEFAULT_REGION, then the profile's region).
    "REGION": None,
    # None (all three): boto3's default credential chain (environment, shared
    # credentials and config files, SSO, container and instance roles).
    "ACCESS_KEY_ID": None,
    "SECRET_ACCESS_KEY": None,
    "SESSION_TOKEN": None,
    "PROFILE": None,  # a named profile of ~/.aws/config, instead of the default one
    "ENDPOINT_URL": None,  # an http(s) URL: a VPC interface endpoint, a test server
    "SMS_TYPE": "Transactional",  # or "Promotional" (cheaper routes, not for codes)
    # Each a string for every number, or a dict by ISO 3166 region with an
    # optional "default": {"DE": "Acme", "default": None}.
    "SENDER_ID": None,  # alphanumeric sender ID, 1-11 characters, where the country allows
    "ORIGINATION_NUMBER": None,  # E.164, one of the account's origination numbers
    "MAX_PRICE": None,  # USD per message (AWS.SNS.SMS.MaxPrice); None: no cap
    "TIMEOUT": 5,  # seconds one API call may take (connect + answer)
    # Ask SNS (CheckIfPhoneNumberIsOptedOut) before each send: an opted-out
    # number then fails the token instead of SNS dropping the SMS silently.
    "CHECK_OPT_OUT": False,
}
