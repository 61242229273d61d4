"""Per-recipient, per-client and per-IP limits on top of django-ratelimit.

django-ratelimit's decorator keys (``post:phone_number``) cannot see a JSON
body, and they would count the raw text rather than the normalised
recipient. So the services call :func:`django_ratelimit.core.get_usage`
after parsing, with the recipient's keyed hash as the key: every written form
of one number shares one counter and the cache never holds a plain recipient.

Counters are incremented atomically (``cache.add`` + ``cache.incr``). A send
that fails later for a reason that must consume nothing (the broker is down)
hands its increments back with :meth:`Charge.refund`.

When the cache does not answer, each process stops asking it for
``BREAKER_SECONDS`` (a circuit breaker): a hung Redis would otherwise cost
every later counter of the request, and of every request after it, a full
socket timeout. Meanwhile sends fail closed (503) or open, as configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit.core import _SIMPLE_KEYS, _get_window, _make_cache_key, _split_rate, get_usage

from .conf import otp_settings
from .exceptions import (
    EmailRateLimitExceeded,
    RateLimited,
    RateLimitExceeded,
    SMSRateLimitExceeded,
    TemporarilyUnavailable,
)

logger = logging.getLogger(__name__)


#: After the cache failed, this process treats it as down for this many seconds.
BREAKER_SECONDS = 2.0
_down_until = 0.0


class CacheUnavailable(Exception):
    """The counter cache did not answer."""


def cache_is_down() -> bool:
    """Whether the cache failed less than ``BREAKER_SECONDS`` ago in this process."""
    return time.monotonic() < _down_until


def _trip_breaker() -> None:
    global _down_until
    _down_until = time.monotonic() + BREAKER_SECONDS


def reset_breaker(**kwargs: object) -> None:
    """Forget a cache failure (another cache was configured, or a test starts afresh)."""
    global _down_until
    _down_until = 0.0


setting_changed.connect(reset_breaker)


@dataclass
class Charge:
    """The counters one send incremented, so they can be handed back."""

    keys: list[str] = field(default_factory=list)
    #: Seconds until the next send to this recipient is allowed (0: now).
    retry_after: int = 0

    def refund(self) -> None:
        if cache_is_down():  # each decr would wait for a timeout; the counters expire anyway
            logger.warning("rate-limit refund skipped: cache unavailable")
            self.keys.clear()
            return
        cache = _cache()
        for key in self.keys:
            try:
                cache.decr(key)
            except Exception:  # noqa: BLE001 - best effort; the key may have expired
                logger.debug("rate-limit refund skipped for one counter")
        self.keys.clear()


def _cache():  # type: ignore[no-untyped-def]
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _hit(
    request: HttpRequest, group: str, value: str, rates: Iterable[str], charge: Charge
) -> int | None:
    """Count one hit against the rates; return the seconds to wait if any is exceeded.

    Rates are taken shortest window first, and once one refuses, the longer
    ones are only looked at, not counted. Otherwise a burst of refused requests
    (20 sends at once to one number) would push the hourly and daily counters
    up until each refusal is handed back, and the burst would be answered with
    a ``Retry-After`` of hours instead of the 30 seconds that actually apply.
    """
    wait: int | None = None
    for rate in sorted(rates, key=lambda r: _split_rate(r)[1]):
        try:
            usage = get_usage(
                request, group=group, key=lambda _g, _r: value, rate=rate, increment=wait is None
            )
        except Exception as exc:  # noqa: BLE001 - django-redis raises its client's errors
            _trip_breaker()
            raise CacheUnavailable(str(type(exc).__name__)) from exc
        if usage is None:  # RATELIMIT_ENABLE = False
            continue
        if usage["limit"] == 0 and usage["time_left"] == -1:
            raise CacheUnavailable("cache refused the counter")
        time_left = max(1, int(usage["time_left"]))
        if wait is not None:  # only looking: would this rate refuse too, and for longer?
            if usage["count"] >= usage["limit"]:
                wait = max(wait, time_left)
            continue
        _, period = _split_rate(rate)
        charge.keys.append(_make_cache_key(group, _get_window(value, period), rate, value, ALL))
        if usage["should_limit"]:
            wait = time_left
        elif usage["count"] >= usage["limit"]:
            charge.retry_after = max(charge.retry_after, time_left)
    return wait


def _guarded(
    request: HttpRequest, group: str, value: str, rates: Iterable[str], charge: Charge
) -> int | None:
    """Count one hit into ``charge``; on refusal or cache failure hand this hit back."""
    rates = list(rates)
    if not rates:
        return None
    local = Charge()
    try:
        if cache_is_down():
            raise CacheUnavailable("circuit breaker open")
        wait = _hit(request, group, value, rates, local)
    except CacheUnavailable:
        local.refund()
        if otp_settings.RATE_LIMIT_FAIL_OPEN:
            logger.warning("rate-limit cache unavailable; failing open for %s", group)
            return None
        charge.refund()
        logger.error("rate-limit cache unavailable; refusing the request (fail closed)")
        raise TemporarilyUnavailable() from None
    if wait is not None:
        local.refund()
        return wait
    charge.keys.extend(local.keys)
    charge.retry_after = max(charge.retry_after, local.retry_after)
    return None


def check_client_and_ip(request: HttpRequest | None, client_pk: int, charge: Charge) -> None:
    """Raise ``RateLimitExceeded`` (429) when the client or the caller's IP is over its limits."""
    req = request if request is not None else HttpRequest()
    wait = _guarded(req, "ciam_otp.client", str(client_pk), otp_settings.CLIENT_RATE_LIMITS, charge)
    if wait is None and request is not None and otp_settings.IP_RATE_LIMITS:
        ip = _SIMPLE_KEYS["ip"](request)
        wait = _guarded(request, "ciam_otp.ip", ip, otp_settings.IP_RATE_LIMITS, charge)
    if wait is not None:
        charge.refund()
        raise RateLimitExceeded(retry_after=wait)


def check_recipient(
    request: HttpRequest | None, channel: str, recipient_hash: str, usage: str, charge: Charge
) -> None:
    """Raise the channel's ``*_rate_limit_exceeded`` when the recipient is over its limits.

    Hits already in ``charge`` (client, IP) stay counted: a caller hammering a
    limited recipient still uses up its own allowance.
    """
    rates = otp_settings.SMS_RATE_LIMITS if channel == "sms" else otp_settings.EMAIL_RATE_LIMITS
    value = f"{recipient_hash}:{usage}" if otp_settings.RATE_LIMIT_PER_USAGE else recipient_hash
    # Retry-after reported on success is about this recipient only.
    own = Charge()
    wait = _guarded(request or HttpRequest(), f"ciam_otp.{channel}", value, rates or (), own)
    if wait is not None:
        error: type[RateLimited] = (
            SMSRateLimitExceeded if channel == "sms" else EmailRateLimitExceeded
        )
        raise error(retry_after=wait)
    charge.keys.extend(own.keys)
    charge.retry_after = own.retry_after


def check_prefix(request: HttpRequest | None, prefix: str, charge: Charge) -> None:
    """Raise ``RateLimitExceeded`` (429) when numbers sharing ``prefix`` got too many codes."""
    wait = _guarded(
        request or HttpRequest(), "ciam_otp.prefix", prefix, otp_settings.PREFIX_RATE_LIMITS, charge
    )
    if wait is not None:
        raise RateLimitExceeded(
            retry_after=wait,
            description="Too many codes to numbers like this one. Try again later.",
        )


def parse_rates(text: str) -> list[str]:
    """``"1/30s,5/h"`` -> ``["1/30s", "5/h"]``; an empty string means no limits."""
    return [part.strip() for part in text.split(",") if part.strip()]
