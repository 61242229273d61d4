"""The Tencent backend's own settings: ``CIAM_OTP["TENCENT_SMS"]`` and its defaults.

They belong to the backend, not to the core table (``django_ciam_otp.conf``):
the backend reads each entry with ``backend_setting`` (a lower-cased keyword
argument overrides it), its checks compare the dict with :data:`DEFAULTS`, and
``docs/sms-backends.md`` documents every entry (a test keeps the two equal).
"""

from __future__ import annotations

from typing import Any, Final

#: The ``CIAM_OTP`` key of the dict (``SMSBackend.settings_key``).
SETTINGS_KEY: Final = "TENCENT_SMS"

DEFAULTS: Final[dict[str, Any]] = {
    # None: static keys if SECRET_ID or SECRET_KEY is set, else the SDK's default
    # chain (environment, profile file, CVM role, TKE OIDC role); "static";
    # "default"; or the dotted path of a callable returning an SDK credential.
    "CREDENTIALS": None,
    "SECRET_ID": None,
    "SECRET_KEY": None,
    "REGION": "ap-guangzhou",  # X-TC-Region: ap-beijing, ap-guangzhou, ap-nanjing...
    # None or "mainland" (sms.tencentcloudapi.com), "international"
    # (sms.intl.tencentcloudapi.com), "regional" (sms.<REGION>.tencentcloudapi.com),
    # a host name, or an http(s) URL (tests).
    "ENDPOINT": None,
    "SDK_APP_ID": None,
    # Mainland numbers: the approved signature, and usage (or "default") -> template
    # id; either may be a dict by language ({"en": ..., "zh-hans": ..., "default": ...}).
    "SIGN_NAME": None,
    "TEMPLATE_IDS": {},
    # What fills the template's {1}, {2}...: "code", "minutes" (rounded down), "seconds".
    "TEMPLATE_PARAMS": ["code", "minutes"],
    # Numbers outside the mainland: region (ISO 3166) or "default" ->
    # {"SIGN_NAME", "TEMPLATE_IDS", "TEMPLATE_PARAMS", "SENDER_ID"}.
    "INTERNATIONAL": {},
    "TIMEOUT": 5,  # seconds one API call may take (connect + answer)
    # After a try that may have gone out, ask Tencent before sending again.
    "CONFIRM_BEFORE_RESEND": True,
    # The shared secret of the status callback URL (/otp/receipts/tencent/?secret=...):
    # Tencent signs nothing. None: receipts are refused (403).
    "RECEIPT_SECRET": None,
}
