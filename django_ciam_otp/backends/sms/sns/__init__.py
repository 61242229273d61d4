"""Amazon SNS SMS through boto3 (``pip install "django-ciam-otp[sns]"``).

``django_ciam_otp.backends.sms.sns.SMSBackend`` sends each code as one SNS
``Publish`` to the phone number, the text rendered from the site's templates.
The package:

* :mod:`.backend`: the backend: the publish, the optional opt-out check, the
  outcome of each answer;
* :mod:`.errors`: what each SNS answer and botocore failure means (retry, give
  up, try the next backend, or stop the line), one table citing AWS's pages;
* :mod:`.attributes`: the SMS attributes a number's publish carries (type,
  sender ID and origination number by country, maximum price);
* :mod:`.sdk`: boto3 imported lazily, timeouts, one client per worker process;
* :mod:`.checks`: its system checks, ``ciam_otp.E141``–``ciam_otp.E146`` and
  ``ciam_otp.W141``–``ciam_otp.W144``, run through ``SMSBackend.check()``.

Settings live in ``CIAM_OTP["SNS_SMS"]``, the backend's own: defaults in
:mod:`.conf`, documented in ``docs/sms/sns.md``. Neither the code nor the full
phone number is ever logged or put in an error reason; botocore's own debug
records of the calls that carry them are filtered out. SNS has no delivery
callbacks for direct SMS, so the backend takes no receipts.
"""

from __future__ import annotations

from .backend import SMSBackend
from .checks import BACKEND_PATH, check_sns_settings
from .errors import ERROR_CLASSES, UNCLEAR_OUTCOMES, classify_error, refine
from .sdk import PIP_EXTRA

__all__ = [
    "BACKEND_PATH",
    "ERROR_CLASSES",
    "PIP_EXTRA",
    "UNCLEAR_OUTCOMES",
    "SMSBackend",
    "check_sns_settings",
    "classify_error",
    "refine",
]
