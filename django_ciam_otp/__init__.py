"""django-ciam-otp: send and verify one-time passcodes by SMS and email.

The Python API is the same service the HTTP views use::

    from django_ciam_otp import send_otp, verify_otp
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0.dev0"
__all__ = ["send_otp", "verify_otp", "__version__"]


def send_otp(*args: Any, **kwargs: Any) -> Any:
    """See :func:`django_ciam_otp.services.send_otp`."""
    from .services import send_otp as _send_otp

    return _send_otp(*args, **kwargs)


def verify_otp(*args: Any, **kwargs: Any) -> Any:
    """See :func:`django_ciam_otp.services.verify_otp`."""
    from .services import verify_otp as _verify_otp

    return _verify_otp(*args, **kwargs)
