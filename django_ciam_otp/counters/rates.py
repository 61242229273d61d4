"""Rates, windows and counter keys: this app's own, so no other library's release can move them.

A rate is written as django-ratelimit writes it, so sites keep their
settings: ``"<limit>/<period>"`` where the period is a unit (``s``, ``m``,
``h``, ``d``) with an optional multiplier (``"1/30s"``, ``"5/h"``,
``"3/3600s"``, ``"10/m"``, ``"100/d"``); a bare number is seconds.

Windows are fixed, and staggered per counted value as django-ratelimit
staggers them (``crc32(value) % period`` seconds after the period's edge), so
the windows of a million recipients do not all end in the same second. A
window is named by its last second ``w``: it still counts during ``w`` and is
over at ``w + 1``, so the wait it imposes is ``w + 1 - int(now)`` whole
seconds (:func:`wait_for`): obeyed to the second, a retry is counted in a new
window.

Counter keys (before the cache's own ``KEY_PREFIX`` and version)::

    ciam_otp:rl:<group>:<limit>/<period>s:<window's last second>:<value>

for example ``ciam_otp:rl:sms:5/3600s:1746087421:<recipient hash>:login``.
The value is what the rule counts by; rules never put a plain address in it
(recipients and IP addresses are keyed hashes). A prefix limit's value is the
prefix itself (``861361234``: the country code and a block, shared by ten
thousand numbers), as the admin's blocked-prefix table shows it.
"""

from __future__ import annotations

import functools
import re
import time
import zlib
from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured

from .plan import Buckets, Rate

#: A sliding window's newest buckets that a send may still bump: the current one, and the one
#: before it for a web server whose clock is up to a bucket behind. The older ones are settled.
OPEN_BUCKETS = 2

#: Seconds a counter outlives its longest possible window (as django-ratelimit's keys do).
EXPIRATION_FUDGE = 5
KEY_PREFIX = "ciam_otp:rl"

_RATE = re.compile(r"^(\d+)/(\d*)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.lru_cache(maxsize=256)
def parse_rate(text: str) -> tuple[int, int]:
    """``"5/h"`` -> ``(5, 3600)``: the limit and the period in seconds."""
    match = _RATE.match(text.strip())
    if match is None:
        raise ImproperlyConfigured(f"{text!r} is not a rate such as '5/h' or '1/30s'")
    limit, multiplier, unit = match.groups()
    period = _UNITS[unit] * (int(multiplier) if multiplier else 1)
    if period <= 0:
        raise ImproperlyConfigured(f"the period of the rate {text!r} must be at least one second")
    return int(limit), period


@functools.lru_cache(maxsize=128)
def shortest_first(texts: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """``("5/h", "1/30s")`` -> ``((1, 30), (5, 3600))``: the order every rule is checked in."""
    return tuple(sorted((parse_rate(t) for t in texts), key=lambda parsed: parsed[1]))


def window_end(value: str, period: int, now: float | None = None) -> int:
    """The last second of ``value``'s current window of ``period`` seconds (see the module)."""
    ts = int(time.time() if now is None else now)
    if period == 1:
        return ts
    end = ts - (ts % period) + (zlib.crc32(value.encode()) % period)
    return end + period if end < ts else end


def wait_for(window: int) -> int:
    """Whole seconds until the window whose last second is ``window`` has surely ended."""
    return max(1, window + 1 - int(time.time()))


def counter_key(group: str, limit: int, period: int, window: int, value: str) -> str:
    """The documented key of one counter (see the module)."""
    return f"{KEY_PREFIX}:{group}:{limit}/{period}s:{window}:{value}"


def rates_for(group: str, value: str, texts: Iterable[str]) -> tuple[Rate, ...]:
    """The counters of ``value`` under ``texts``, shortest window first, in the current windows."""
    now = time.time()
    found = []
    for limit, period in shortest_first(tuple(texts)):
        window = window_end(value, period, now)
        key = counter_key(group, limit, period, window, value)
        found.append(Rate(limit, window, key, period + EXPIRATION_FUDGE))
    return tuple(found)


def bucket_keys(
    stem: str, width: int, count: int, now: float | None = None, *, skip_last: int = 0
) -> tuple[str, ...]:
    """``<stem>:<n>`` for the last ``count`` buckets of ``width`` seconds, oldest first.

    A sliding window counted in steps: a send bumps the newest bucket, a
    reader sums them all. ``skip_last`` leaves out that many of the newest
    (the site-wide view's settled sends: codes still being typed).
    """
    return sliding_window(stem, width, count, now, skip_last=skip_last).keys


def sliding_window(
    stem: str, width: int, count: int, now: float | None = None, *, skip_last: int = 0
) -> Buckets:
    """:func:`bucket_keys` with its settled buckets named, and the memo that may stand for them.

    Buckets older than the :data:`OPEN_BUCKETS` newest are settled; the memo
    ``<stem>:settled:<first>-<last>`` names their range (so it never needs
    invalidating) and lives two buckets, as long as a server up to a bucket
    behind still asks for it. Fewer than two settled buckets get no memo: it
    would save nothing.
    """
    current = int((time.time() if now is None else now) // width)
    return _window(stem, width, count, skip_last, current)


@functools.lru_cache(maxsize=512)
def _window(stem: str, width: int, count: int, skip_last: int, current: int) -> Buckets:
    """One window's names, made once per bucket (a send asks for ten windows of a day each)."""
    first, last = current - count + 1, current - skip_last
    keys = tuple(f"{stem}:{b}" for b in range(first, last + 1))
    settled_last = min(last, current - OPEN_BUCKETS)
    settled = settled_last - first + 1
    if settled < 2:
        return Buckets(keys)
    return Buckets(keys, settled, f"{stem}:settled:{first}-{settled_last}", 2 * width)
