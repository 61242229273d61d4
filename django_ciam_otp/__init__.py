"""django-ciam-otp: send and verify one-time passcodes by SMS and email.

The Python API is the same service the HTTP views use::

    from django_ciam_otp import send_otp, verify_otp

    sent = send_otp(usage="signup", email="alice@example.com")   # the site's own client
    verify_otp(None, sent.otp_token, "123456", email="alice@example.com", usage="signup")

Both are imported on first use (PEP 562), not when Django loads the app:
this module is imported while ``INSTALLED_APPS`` is read, before models can be.
Type checkers see the real signatures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .flows import SendResult, VerifyResult, send_otp, verify_otp

__version__ = "0.1.0.dev0"
__all__ = ["SendResult", "VerifyResult", "send_otp", "verify_otp", "__version__"]

_LAZY = {"send_otp", "verify_otp", "SendResult", "VerifyResult"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import flows

        return getattr(flows, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
