"""The Alibaba Cloud backend's own settings: ``CIAM_OTP["ALIYUN_SMS"]`` and its defaults.

They belong to the backend, not to the core table (``django_ciam_otp.conf``):
the backend reads each entry with ``backend_setting`` (a lower-cased keyword
argument overrides it), its checks compare the dict with :data:`DEFAULTS`, and
``docs/sms/aliyun.md`` documents every entry (a test keeps the two equal).
"""

from __future__ import annotations

from typing import Any, Final

#: The ``CIAM_OTP`` key of the dict (``SMSBackend.settings_key``).
SETTINGS_KEY: Final = "ALIYUN_SMS"

DEFAULTS: Final[dict[str, Any]] = {
    # None: static keys if ACCESS_KEY_ID or ACCESS_KEY_SECRET is set, else the
    # SDK's default chain (environment, OIDC role, profile files, ECS RAM role);
    # "static"; "default"; or the dotted path of a callable returning a credential.
    "CREDENTIALS": None,
    "ACCESS_KEY_ID": None,
    "ACCESS_KEY_SECRET": None,
    "REGION": "cn-hangzhou",
    # A host name (HTTPS), an http(s) URL (tests), or None: the SDK's endpoint for REGION.
    "ENDPOINT": "dysmsapi.aliyuncs.com",
    # Mainland numbers: the approved signature, and usage (or "default") -> template
    # code; either may be a dict by language ({"en": ..., "zh-hans": ..., "default": ...}).
    "SIGN_NAME": None,
    "TEMPLATE_CODES": {},
    # Template variable name -> what fills it: "code", "minutes" (rounded down), "seconds".
    "TEMPLATE_PARAMS": {"code": "code"},
    # Numbers outside the mainland: region (ISO 3166) or "default" ->
    # {"SIGN_NAME", "TEMPLATE_CODES", "TEMPLATE_PARAMS"}.
    "INTERNATIONAL": {},
    # The shared secret of the receipts URL (?secret=...); None refuses every receipt.
    "RECEIPT_SECRET": None,
    "TIMEOUT": 4,  # seconds one API call may take (connect + answer)
    # After a try that may have gone out, ask Alibaba (QuerySendDetails) before sending again.
    "CONFIRM_BEFORE_RESEND": True,
}
