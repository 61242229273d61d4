"""The site-wide view of SMS pumping, and the tightened mode it switches on.

Per-prefix rules (``abuse.py``) cannot tell a bot spread over many fresh
number blocks, a few numbers each, from people whose numbers are also in
fresh blocks. The site as a whole can: people come mostly from blocks where
people verified before, and they verify; a pumping bot sends to blocks that
never verified, and the site's conversion falls while it does.

Every SMS send that the monitor judges counts, in the send's own round trip
(its ``CountPlan``):

* site-wide sends (attempts), verifications, and the distinct **unproven**
  prefixes sent to (no code to the prefix verified in ``PREFIX_MEMORY``: the
  count is conditional on the prefix's "verified lately" marker, inside the
  same script), in 60-second buckets over ``SITE_WINDOW`` and in hourly
  buckets over ``SITE_HISTORY``;
* the tightened-mode key, and a token bucket (:class:`~.counters.Budget`)
  that applies only while that key exists and only to unproven prefixes.

From the sums, :func:`judge` decides whether the site's traffic is out of its
normal band:

* **unproven surge**: the short window's distinct unproven prefixes per
  send are above ``UNPROVEN_SURGE`` times the history's (or above
  ``UNPROVEN_SHARE_FLOOR`` until ``SITE_HISTORY_MIN_SENDS`` sends of history
  exist: a new site's floor), with at least ``SITE_MIN_UNPROVEN`` such
  prefixes. Prefixes, not sends: a bot spread over many fresh blocks touches
  many, people in unproven blocks touch one each, and a bot that hammers a
  few blocks (which the per-prefix rules stop) touches few and must not
  tighten the site for everybody;
* **conversion drop**: the short window's verified/sent ratio (sends of the
  last two minutes left out: people take time to type a code) is below
  ``CONVERSION_DROP`` times the history's ratio (``NEW_SITE_RATIO`` before
  the history counts), over at least ``SITE_MIN_SENDS`` sends.

Out of band, the site is **tightened**: the mode key is set (with the time),
``pumping_mode_changed`` fires and ``ADMINS`` get a mail; sends to unproven
prefixes then take a token from the budget, whose size is the cost ceiling
``UNPROVEN_CODES_PER_HOUR`` (a burst of a sixth of it, refilled so that no
hour passes the ceiling), and each 100-number range of an unproven prefix
gets codes for one number per window (``abuse.caps``). Proven prefixes are
untouched. After ``TIGHTENED_MIN_SECONDS`` with both signals back in band,
the mode ends (the same signal and mail). Nothing here costs a round trip
but a mode change.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.mail import mail_admins

from . import counters, signals
from .conf import otp_settings
from .counters import (
    BUDGET_REFUSED,
    Buckets,
    Budget,
    Bump,
    CountResult,
    Distinct,
    Sum,
    sliding_window,
    store,
)
from .exceptions import RateLimitExceeded

logger = logging.getLogger(__name__)

SHORT_BUCKET = 60
LONG_BUCKET = 3600
#: Sends this recent are left out of the short window's conversion: their codes are being typed.
TYPING_SECONDS = 120

MODE_KEY = "ciam_otp:site:mode"
BUDGET_KEY = "ciam_otp:site:budget"

#: The names of this module's parts of a count's result.
SHORT_SENDS = "site sends (short, settled)"
SHORT_ALL_SENDS = "site sends (short)"
SHORT_VERIFIED = "site verifications (short)"
SHORT_UNPROVEN = "site unproven sends (short)"
SHORT_FRESH = "site unproven prefixes (short)"
LONG_FRESH = "site unproven prefixes (history)"
LONG_SENDS = "site sends (history)"
LONG_VERIFIED = "site verifications (history)"
LONG_UNPROVEN = "site unproven sends (history)"
MODE = "site tightened since"
BUDGET = "site unproven budget"


def _config() -> dict[str, Any]:
    config: dict[str, Any] = otp_settings.CONVERSION_MONITOR
    return config


def _setting(name: str) -> float:
    return float(_config().get(name) or 0)


def enabled() -> bool:
    config = _config()
    return bool(config.get("ENABLED", True)) and bool(config.get("SITE_WINDOW"))


# --- keys ----------------------------------------------------------------------------------


def _buckets(kind: str, width: int, span: int, now: float, skip_last: int = 0) -> Buckets:
    """``kind``'s buckets of ``width`` seconds covering the last ``span`` seconds.

    Their settled part travels as a memo (``rates.sliding_window``): a send
    passes a few keys per sum, not a day of hours.
    """
    stem = f"ciam_otp:site:{kind}:{width}"
    return sliding_window(stem, width, max(1, span // width), now, skip_last=skip_last)


def _short(kind: str, now: float, skip_last: int = 0) -> Buckets:
    return _buckets(kind, SHORT_BUCKET, int(_setting("SITE_WINDOW")), now, skip_last)


def _long(kind: str, now: float) -> Buckets:
    return _buckets(kind, LONG_BUCKET, int(_setting("SITE_HISTORY")), now)


def _short_ttl() -> int:
    return int(_setting("SITE_WINDOW")) + SHORT_BUCKET


def _long_ttl() -> int:
    return int(_setting("SITE_HISTORY")) + LONG_BUCKET


# --- the budget ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    """The token bucket that holds unproven-prefix sends to ``per_hour`` in any hour."""

    per_hour: float

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_hour / 6)

    @property
    def per_second(self) -> float:
        return max(0.0, self.per_hour - self.capacity) / 3600

    def wait(self) -> int:
        """Whole seconds until the bucket holds a token again (from empty)."""
        return max(1, math.ceil(1 / self.per_second)) if self.per_second else 3600


def ceiling() -> Ceiling:
    return Ceiling(_setting("UNPROVEN_CODES_PER_HOUR"))


# --- one send ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteWatch:
    """The site-wide part of one send's count (empty when the view is off)."""

    bumps: tuple[Bump, ...] = ()
    sums: tuple[Sum, ...] = ()
    distinct: tuple[Distinct, ...] = ()
    budgets: tuple[Budget, ...] = ()


def watch(prefix: str | None, known_key: str, *, now: float | None = None) -> SiteWatch:
    """What one SMS send counts and reads site-wide; ``known_key``: its prefix's "verified" marker.

    ``prefix`` is ``None`` for a send the monitor does not judge (not SMS, a test recipient).
    """
    if prefix is None or not enabled():
        return SiteWatch()
    now = time.time() if now is None else now
    short_ttl, long_ttl = _short_ttl(), _long_ttl()
    # Attempts, not deliveries: a send the budget refuses still shows the attack.
    bumps = (
        Bump(_short("s", now).keys[-1], short_ttl, kept=True),
        Bump(_long("s", now).keys[-1], long_ttl, kept=True),
        Bump(_short("u", now).keys[-1], short_ttl, unless=known_key, kept=True),
        Bump(_long("u", now).keys[-1], long_ttl, unless=known_key, kept=True),
    )
    settled = TYPING_SECONDS // SHORT_BUCKET
    sums = (
        Sum(SHORT_SENDS, _short("s", now, skip_last=settled)),
        Sum(SHORT_ALL_SENDS, _short("s", now)),
        Sum(SHORT_VERIFIED, _short("v", now)),
        Sum(SHORT_UNPROVEN, _short("u", now)),
        Sum(LONG_SENDS, _long("s", now)),
        Sum(LONG_VERIFIED, _long("v", now)),
        Sum(LONG_UNPROVEN, _long("u", now)),
        Sum(MODE, (MODE_KEY,)),
    )
    # Distinct unproven prefixes: a bot spread over many fresh blocks touches many; one that
    # hammers a few blocks (which the per-prefix rules stop) touches few, and must not tighten
    # the site for everybody.
    short_sets, long_sets = _short("f", now), _long("f", now)
    distinct = (
        Distinct(SHORT_FRESH, prefix, short_sets.keys[-1], short_sets, 10**9, short_ttl, known_key),
        Distinct(LONG_FRESH, prefix, long_sets.keys[-1], long_sets, 10**9, long_ttl, known_key),
    )
    bucket = ceiling()
    budgets = (
        Budget(
            BUDGET,
            BUDGET_KEY,
            capacity=bucket.capacity,
            per_second=bucket.per_second,
            ttl=_long_ttl(),
            when=MODE_KEY,
            unless=known_key,
        ),
    )
    return SiteWatch(bumps, sums, distinct, budgets)


@dataclass(frozen=True)
class Signals:
    """The site's traffic as one send's count saw it, and whether it is out of its band."""

    short_sends: int
    short_settled_sends: int
    short_verified: int
    short_fresh: int
    long_sends: int
    long_verified: int
    long_fresh: int
    surge: bool
    drop: bool

    @property
    def out_of_band(self) -> bool:
        return self.surge or self.drop

    def reason(self) -> str:
        parts = []
        if self.surge:
            parts.append(
                f"{self.short_sends} sends in the last {int(_setting('SITE_WINDOW')) // 60} "
                f"minutes went to {self.short_fresh} different unproven prefixes"
            )
        if self.drop:
            parts.append(
                f"{self.short_verified} verified of {self.short_settled_sends} settled sends "
                "in the short window"
            )
        return "; ".join(parts) or "back within the site's normal band"


def read_signals(sums: Mapping[str, int], distinct: Mapping[str, int]) -> Signals:
    """The two signals from a count's sums and distinct counts (see the module)."""
    short_sends, settled = sums[SHORT_ALL_SENDS], sums[SHORT_SENDS]
    verified, fresh = sums[SHORT_VERIFIED], distinct[SHORT_FRESH]
    long_sends, long_verified = sums[LONG_SENDS], sums[LONG_VERIFIED]
    long_fresh = distinct[LONG_FRESH]
    history = long_sends >= _setting("SITE_HISTORY_MIN_SENDS")
    floor = _setting("UNPROVEN_SHARE_FLOOR")
    share_line = (
        max(floor, _setting("UNPROVEN_SURGE") * long_fresh / long_sends)
        if history and long_sends
        else floor
    )
    surge = (
        fresh >= _setting("SITE_MIN_UNPROVEN")
        and short_sends > 0
        and fresh / short_sends > share_line
    )
    usual_ratio = (
        long_verified / long_sends if history and long_sends else _setting("NEW_SITE_RATIO")
    )
    drop = settled >= _setting("SITE_MIN_SENDS") and (
        verified / settled < _setting("CONVERSION_DROP") * usual_ratio
    )
    return Signals(
        short_sends,
        settled,
        verified,
        fresh,
        long_sends,
        long_verified,
        long_fresh,
        surge,
        drop,
    )


# This process's latest reading of the mode (from the last count it made): the
# neighbour rule of abuse.caps() follows it without a round trip of its own.
_tightened_here = False


def forget_local_copy(**kwargs: object) -> None:
    """Forget this process's reading of the mode (tests, another cache configured)."""
    global _tightened_here
    _tightened_here = False


def tightened_here() -> bool:
    """Whether the last count this process made found the site tightened."""
    return _tightened_here


def judge(site: SiteWatch, result: CountResult | None) -> RateLimitExceeded | None:
    """Switch the mode when the signals say so; the budget's refusal of this send, or ``None``."""
    global _tightened_here
    if not site.sums or result is None or MODE not in result.sums:
        return None
    since = result.sums[MODE]
    _tightened_here = bool(since)
    found = read_signals(result.sums, result.distinct)
    if found.out_of_band and not since:
        _switch(tightened=True, found=found)
    elif not found.out_of_band and since:
        if time.time() - since >= _setting("TIGHTENED_MIN_SECONDS"):
            _switch(tightened=False, found=found)
    if result.budgets.get(BUDGET) == BUDGET_REFUSED:
        return RateLimitExceeded(
            retry_after=ceiling().wait(),
            description="Codes to numbers in new ranges are paused for a while. Try again later.",
        )
    return None


def _mode_ttl() -> int:
    """The mode key outlives the hold by an hour, so a forgotten mode cannot last for ever.

    It is not renewed while the attack goes on (that would cost each send a
    round trip): when it expires, the next send out of band sets it again, and
    admins hear that the site is (still) tightened.
    """
    return int(_setting("TIGHTENED_MIN_SECONDS")) + 3600


def _switch(*, tightened: bool, found: Signals) -> None:
    """Set or clear the mode key; only the process that changed it tells anyone."""
    global _tightened_here
    try:
        if tightened:
            changed = store.add(MODE_KEY, int(time.time()), _mode_ttl())
        else:
            store.delete_many([MODE_KEY])
            changed = True
    except counters.CacheUnavailable:
        logger.warning("could not change the site's pumping mode (cache unavailable)")
        return
    _tightened_here = tightened
    if not changed:
        return
    mode = "tightened" if tightened else "normal"
    reason = found.reason()
    logger.warning("SMS pumping: the site is now in %s mode (%s)", mode, reason)
    signals.pumping_mode_changed.send(
        sender=SiteWatch, tightened=tightened, reason=reason, signals=found
    )
    per_hour = int(ceiling().per_hour)
    body = (
        f"Sends to phone number blocks where no code was ever verified are now limited to "
        f"{per_hour} codes per hour, site-wide, and one number per 100-number range.\n\n"
        f"Why: {reason}."
        if tightened
        else f"The site's traffic is back in its normal band: {reason}. Sends to new blocks "
        "are no longer limited site-wide."
    )
    mail_admins(f"SMS pumping: {mode} mode", body, fail_silently=True)


def record_verification(*, now: float | None = None) -> None:
    """A code was verified: the site's conversion counts it (best effort)."""
    if not enabled() or counters.cache_is_down():
        return
    now = time.time() if now is None else now
    try:
        store.bump(_short("v", now).keys[-1], _short_ttl())
        store.bump(_long("v", now).keys[-1], _long_ttl())
    except counters.CacheUnavailable:  # monitoring must never fail a verification
        logger.warning("site-wide conversion could not count (cache unavailable)")


# --- the dashboard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """What the admin dashboard shows of the site-wide view."""

    enabled: bool
    tightened_since: float | None
    budget_left: float | None
    per_hour: float
    #: Sends to unproven prefixes per hour, oldest first, the current hour last.
    unproven_by_hour: tuple[int, ...]


def status(*, hours: int = 6, now: float | None = None) -> Status:
    """The mode, the budget left and the recent unproven-prefix sends (one cache read)."""
    bucket = ceiling()
    if not enabled() or counters.cache_is_down():
        return Status(enabled(), None, None, bucket.per_hour, ())
    now = time.time() if now is None else now
    keys = _long("u", now).keys[-hours:]
    try:
        values = store.get_many([MODE_KEY, *keys])
        left = store.budget_left(BUDGET_KEY, bucket.capacity, bucket.per_second)
    except counters.CacheUnavailable:
        return Status(True, None, None, bucket.per_hour, ())
    since = values.get(MODE_KEY)
    return Status(
        True,
        float(since) if since else None,
        left,
        bucket.per_hour,
        tuple(int(values.get(k) or 0) for k in keys),
    )
