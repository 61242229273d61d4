"""drfpasswordless's SMS callback without Twilio: format the text as it would, send nothing.

``PASSWORDLESS_SMS_CALLBACK`` points here. drfpasswordless's own sender
(``send_sms_with_callback_token``) builds ``PASSWORDLESS_MOBILE_MESSAGE % key``
and hands it to Twilio's client; its ``PASSWORDLESS_TEST_SUPPRESSION`` would
skip even the formatting.
"""

from __future__ import annotations

from typing import Any

from drfpasswordless.settings import api_settings


def send_sms_with_callback_token(user: Any, mobile_token: Any, **kwargs: Any) -> bool:
    base = kwargs.get("mobile_message", api_settings.PASSWORDLESS_MOBILE_MESSAGE)
    to_number = str(getattr(user, api_settings.PASSWORDLESS_USER_MOBILE_FIELD_NAME))
    body = base % mobile_token.key
    return bool(to_number and body)
