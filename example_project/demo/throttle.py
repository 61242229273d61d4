"""Failed password log-ins, throttled per IP address and per account (django-ratelimit).

Without it the password page lets anyone guess passwords as fast as they can
post. Failures are counted on django-ratelimit's counters through its public
``get_usage`` (its cache, ``RATELIMIT_USE_CACHE``, its windows, its "ip" key
with ``RATELIMIT_IP_META_KEY`` behind a proxy); once an address or an account
is over a rate, the form says "Too many failed log-ins. Try again in N
minutes." and does not check the password at all. Successful log-ins are not
counted.

The login's counter is keyed on the login as typed, in canonical form (every
way of writing one address shares it), hashed with ``SECRET_KEY`` so the
cache holds no login names. Not on the account the login belongs to: then
failing with an email address and trying a mobile number would say whether
both name one account. Trade-off: anyone can lock a login out of password
log-in for the rest of a window by failing with it; logging in by code still
works, so the default per login is low. Rates come from
``settings.DEMO_PASSWORD_LOGIN_RATE_LIMITS`` (``{"IP": [...], "ACCOUNT":
[...]}``; an empty list turns one off). The caller's address comes from
:func:`django_ciam_otp.clientip.client_ip` (never missing); each limit fails
open on its own when the cache does not answer, so one broken limit never
switches the others off.
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

from django_ciam_otp.clientip import client_ip

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


def _hashed_key(value: str) -> Callable[[str, HttpRequest], str]:
    digest = salted_hmac("example_project.demo.throttle", value, algorithm="sha256").hexdigest()
    return lambda _group, _request: digest


class LoginThrottle:
    """The failure counters of one log-in attempt: the caller's IP address and the account.

    ``account`` is the login in canonical form (see the module docstring).
    """

    def __init__(self, request: HttpRequest, account: str) -> None:
        self.request = request
        ip = _hashed_key(client_ip(request))
        self.limits: list[tuple[str, Callable[[str, HttpRequest], str], str]] = [
            *((GROUP_IP, ip, rate) for rate in _rates("IP")),
            *((GROUP_ACCOUNT, _hashed_key(account), rate) for rate in _rates("ACCOUNT")),
        ]

    def wait(self) -> int:
        """Seconds until the next attempt is allowed (0: now); counts nothing.

        A cache that does not answer lets the attempt through (logged): the
        page stays usable, and the password hash is slow anyway.
        """
        wait = 0
        for group, key, rate in self.limits:
            try:
                usage = get_usage(self.request, group=group, key=key, rate=rate)
            except Exception:  # noqa: BLE001 - cache clients raise many types for "down"
                logger.warning("password log-in limit %s skipped: cache unavailable", group)
                continue
            if usage is None or usage["time_left"] < 0:  # off, or the cache refused
                continue
            if usage["count"] >= usage["limit"]:
                # django-ratelimit's window still holds during its last second.
                wait = max(wait, int(usage["time_left"]) + 1)
        return wait

    def failed(self) -> None:
        """Count one failed attempt against every limit."""
        for group, key, rate in self.limits:
            try:
                get_usage(self.request, group=group, key=key, rate=rate, increment=True)
            except Exception:  # noqa: BLE001 - see wait()
                logger.warning("failed password log-in not counted in %s (cache)", group)


def too_many_text(wait: int) -> str:
    """The sentence the log-in form shows while the throttle holds (whole minutes, rounded up)."""
    minutes = max(1, math.ceil(wait / 60))
    return ngettext(
        "Too many failed log-ins. Try again in %(n)d minute.",
        "Too many failed log-ins. Try again in %(n)d minutes.",
        minutes,
    ) % {"n": minutes}
