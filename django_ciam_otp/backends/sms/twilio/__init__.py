"""Twilio Programmable Messaging through Twilio's SDK (``pip install "django-ciam-otp[twilio]"``).

``django_ciam_otp.backends.sms.twilio.SMSBackend`` sends each code as a
free-text SMS (the text the site's templates render) with the Messages API,
from one number or through a Messaging Service, and reads Twilio's signed
status callbacks at ``/otp/receipts/twilio/``. The package:

* :mod:`.backend`: the backend: the request, the send, the callbacks' hook;
* :mod:`.errors`: what each Twilio error code means (retry, give up, try the
  next backend, or stop this one), one table citing Twilio's error pages;
* :mod:`.receipts`: signature check and status reading of status callbacks;
* :mod:`.sdk`: the SDK imported lazily, one client per worker process;
* :mod:`.checks`: its system checks, ``ciam_otp.E121``–``ciam_otp.E127`` and
  ``ciam_otp.W121``–``ciam_otp.W123``, run through ``SMSBackend.check()``.

Settings live in ``CIAM_OTP["TWILIO_SMS"]``, the backend's own: defaults in
:mod:`.conf`, documented in ``docs/sms/twilio.md``. Neither the code nor the
full phone number is ever logged or put in an error reason (Twilio's error
messages quote the number; they are scrubbed).
"""

from __future__ import annotations

from .backend import SMSBackend
from .checks import BACKEND_PATH, check_twilio_settings
from .errors import ERROR_CLASSES, LOCAL_CODES, classify_error
from .sdk import PIP_EXTRA

__all__ = [
    "BACKEND_PATH",
    "ERROR_CLASSES",
    "LOCAL_CODES",
    "PIP_EXTRA",
    "SMSBackend",
    "check_twilio_settings",
    "classify_error",
]
