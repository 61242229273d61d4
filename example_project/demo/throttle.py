"""Failed password log-ins, throttled per IP address and per account (django-ratelimit).

Without it the password page lets anyone guess passwords as fast as they can
post. Failures are counted on django-ratelimit's counters through its public
``get_usage`` (its cache, ``RATELIMIT_USE_CACHE``, its windows, its "ip" key
with ``RATELIMIT_IP_META_KEY`` behind a proxy); once an address or an account
is over a rate, the form says "Too many failed log-ins. Try again in N
minutes." and does not check the password at all. Successful log-ins are not
counted.

The account's counter is keyed on who the login names (the user's pk when it
belongs to one, else its canonical form), hashed with ``SECRET_KEY``: every
way of writing one account (``Alice@example.com``, its mobile number in any
form) shares one counter, and the cache holds no login names. Trade-off:
anyone can lock an account out of password log-in for the rest of a window
by failing with it; logging in by code still works, so the default per
account is low. Rates come from ``settings.DEMO_PASSWORD_LOGIN_RATE_LIMITS``
(``{"IP": [...], "ACCOUNT": [...]}``; an empty list turns one off).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django.utils.translation import ngettext
from django_ratelimit.core import get_usage

DEFAULT_RATE_LIMITS: dict[str, list[str]] = {
    "IP": ["10/m", "100/h"],
    "ACCOUNT": ["5/m", "20/h"],
}
GROUP_IP = "demo.password_login.ip"
GROUP_ACCOUNT = "demo.password_login.account"

logger = logging.getLogger(__name__)


def _rates(kind: str) -> Sequence[str]:
    configured = getattr(settings, "DEMO_PASSWORD_LOGIN_RATE_LIMITS", None) or {}
    return configured.get(kind, DEFAULT_RATE_LIMITS[kind])


def _account_key(account: str) -> Callable[[str, HttpRequest], str]:
    digest = salted_hmac("example_project.demo.throttle", account).hexdigest()
    return lambda _group, _request: digest


class LoginThrottle:
    """The failure counters of one log-in attempt: the caller's IP address and the account.

    ``account`` is any string that names the account the same way however it
    was typed (see the module docstring).
    """

    def __init__(self, request: HttpRequest, account: str) -> None:
        self.request = request
        self.limits: list[tuple[str, str | Callable[[str, HttpRequest], str], str]] = [
            *((GROUP_IP, "ip", rate) for rate in _rates("IP")),
            *((GROUP_ACCOUNT, _account_key(account), rate) for rate in _rates("ACCOUNT")),
        ]

    def wait(self) -> int:
        """Seconds until the next attempt is allowed (0: now); counts nothing.

        A cache that does not answer lets the attempt through (logged): the
        page stays usable, and the password hash is slow anyway.
        """
        wait = 0
        try:
            for group, key, rate in self.limits:
                usage = get_usage(self.request, group=group, key=key, rate=rate)
                if usage is None or usage["time_left"] < 0:  # off, or the cache refused
                    continue
                if usage["count"] >= usage["limit"]:
                    # django-ratelimit's window still holds during its last second.
                    wait = max(wait, int(usage["time_left"]) + 1)
        except Exception:  # noqa: BLE001 - cache clients raise many types for "down"
            logger.warning("password log-in throttle skipped: cache unavailable", exc_info=True)
            return 0
        return wait

    def failed(self) -> None:
        """Count one failed attempt against every limit."""
        try:
            for group, key, rate in self.limits:
                get_usage(self.request, group=group, key=key, rate=rate, increment=True)
        except Exception:  # noqa: BLE001 - see wait()
            logger.warning("failed password log-in not counted: cache unavailable", exc_info=True)


def too_many_text(wait: int) -> str:
    """The sentence the log-in form shows while the throttle holds (whole minutes, rounded up)."""
    minutes = max(1, math.ceil(wait / 60))
    return ngettext(
        "Too many failed log-ins. Try again in %(n)d minute.",
        "Too many failed log-ins. Try again in %(n)d minutes.",
        minutes,
    ) % {"n": minutes}
