"""Alibaba Cloud SMS through the official SDK (``pip install "django-ciam-otp[aliyun]"``).

``django_ciam_otp.backends.sms.aliyun.SMSBackend`` sends one approved template
per code with ``SendSms`` (Dysmsapi 2017-05-25). The package:

* :mod:`.backend`: the backend: signature, template and variables per region
  and language, the send, the look at ``QuerySendDetails`` before sending a
  code again after an unclear try, and the receipts hooks;
* :mod:`.errors`: what each Alibaba answer means (retry, give up, try the
  next backend, or stop the line), one table citing Alibaba's pages;
* :mod:`.sdk`: the SDK imported lazily, endpoint, region, timeouts,
  credentials (static keys or the SDK's default chain), one client per process;
* :mod:`.templates`: which signature, template and variables a number gets,
  and how ``PhoneNumbers`` spells it;
* :mod:`.resend`: remembering a try that may have gone out;
* :mod:`.receipts`: SmsReport's HTTP batch push of delivery receipts;
* :mod:`.checks`: its system checks, ``ciam_otp.E131``–``ciam_otp.E139`` and
  ``ciam_otp.W131``–``ciam_otp.W135``, run through ``SMSBackend.check()``.

Settings live in ``CIAM_OTP["ALIYUN_SMS"]``, the backend's own: defaults in
:mod:`.conf`, documented in ``docs/sms/aliyun.md``. Neither the code nor the
full phone number is ever logged or put in an error reason; the SDK's own
debug records of calls that carry them are filtered out.
"""

from __future__ import annotations

from .backend import SMSBackend
from .checks import BACKEND_PATH, check_aliyun_settings
from .errors import ERROR_CLASSES, UNCLEAR_OUTCOMES, classify_error
from .sdk import PIP_EXTRA

__all__ = [
    "BACKEND_PATH",
    "ERROR_CLASSES",
    "PIP_EXTRA",
    "UNCLEAR_OUTCOMES",
    "SMSBackend",
    "check_aliyun_settings",
    "classify_error",
]
