"""Tencent Cloud SMS through the official SDK (``pip install "django-ciam-otp[tencent]"``).

``django_ciam_otp.backends.sms.tencent.SMSBackend`` sends one approved
template per code with ``SendSms`` (API 2021-01-11). The package:

* :mod:`.backend`: the backend: templates, signatures and Sender IDs per
  region and language, the template parameters, the send, and the look at
  Tencent's send statuses before sending a code again after an unclear try;
* :mod:`.errors`: what each Tencent answer means (retry, give up, or stop the
  line), one table citing Tencent's pages;
* :mod:`.sdk`: the SDK imported lazily, endpoints and regions, credentials
  (static keys or the SDK's default chain), one client per worker process;
* :mod:`.templates`: which signature, template and parameters a number gets;
* :mod:`.checks`: its system checks, ``ciam_otp.E101``–``ciam_otp.E112`` and
  ``ciam_otp.W101``–``ciam_otp.W104``, run through ``SMSBackend.check()``.

Settings live in ``CIAM_OTP["TENCENT_SMS"]``, the backend's own: defaults in
:mod:`.conf`, documented on the docs' SMS backends page. Neither the code nor
the full phone number is ever logged or put in an error reason; the SDK's own
debug records of calls that carry them are filtered out.
"""

from __future__ import annotations

from .backend import SMSBackend
from .checks import BACKEND_PATH, check_tencent_auth_sources, check_tencent_settings
from .errors import ERROR_CLASSES, UNCLEAR_OUTCOMES, classify_error
from .sdk import PIP_EXTRA

__all__ = [
    "BACKEND_PATH",
    "ERROR_CLASSES",
    "PIP_EXTRA",
    "UNCLEAR_OUTCOMES",
    "SMSBackend",
    "check_tencent_auth_sources",
    "check_tencent_settings",
    "classify_error",
]
