"""Defences against SMS pumping: prefix velocity limits and the conversion monitor.

SMS pumping sends codes to ranges of premium numbers that never verify. Three
signals catch it early, before the provider's own defences:

* **velocity** — many sends to numbers sharing a prefix (``PREFIX_LENGTH``
  digits of the E.164 number) within minutes; a rate limit like every other
  (see ``ratelimits.py``);
* **conversion** — sends to a prefix that are not followed by verifications.
  Sends and verifications are counted per prefix (and per client, for the
  dashboard) in time buckets in the shared cache; when a prefix with at least
  ``MIN_SENDS`` sends in the window has a verified/sent ratio below
  ``MIN_RATIO``, it is blocked for ``COOLDOWN`` seconds (a ``BlockedPrefix``
  row the admin shows and can lift) and ``prefix_blocked`` fires;
* **no proof** — a prefix in which no code was verified for ``PREFIX_MEMORY``
  seconds is blocked the same way as soon as codes went to more than
  ``NEW_PREFIX_NUMBERS`` different numbers in the window: bots spread over
  many blocks, a few codes each, and never verify. A verified code in a
  blocked prefix lifts its block (the counters then judge the next send).

The monitor declares what it counts with a send (:func:`watch`: the send
buckets to bump, the sums and the distinct numbers to read) and the send's
``CountPlan`` carries it beside the rate limits: one atomic round trip on
Redis, the same plan on any other cache (``counters/``). It is counted before
the send and handed back with the recipient's hits when nothing is sent;
:func:`refusal` and :func:`record_send` read the result's fields by name.
Blocks are read from a per-process copy of the table (``snapshots.py``): a
block or an unblock saved in another process applies within
``LOOKUP_CACHE_SECONDS``. While the cache is known to be down
(``counters.cache_is_down()``) the monitor neither counts nor reads: it waits
for no timeout and never fails a send.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from . import counters, crypto, signals, sitewide, snapshots
from .conf import otp_settings
from .counters import Bump, CountResult, Distinct, Sum, store
from .counters.rates import bucket_keys
from .exceptions import RateLimitExceeded
from .models import BlockedPrefix

logger = logging.getLogger(__name__)

BUCKETS = 6  # the window is counted in this many buckets (a sliding window in steps)


def phone_prefix(e164: str) -> str:
    """``+8613612345678`` -> ``861361234`` (with the default ``PREFIX_LENGTH`` of 9)."""
    return e164.lstrip("+")[: int(otp_settings.PREFIX_LENGTH)]


def _monitor() -> dict[str, Any]:
    config: dict[str, Any] = otp_settings.CONVERSION_MONITOR
    return config


def blocked_error(prefix: str) -> RateLimitExceeded | None:
    """The refusal for ``prefix`` while the conversion monitor blocks it, else ``None``."""
    until = snapshots.blocked_prefixes.get().get(prefix)
    now = timezone.now()
    if until is None or until <= now:
        return None
    # blocked_until > now refuses, so the block is over once that many whole seconds passed.
    wait = int((until - now).total_seconds()) + 1
    return RateLimitExceeded(
        retry_after=wait,
        description="Codes to numbers like this one are paused. Try again later.",
    )


# --- conversion counters ----------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    sends: int
    verifications: int

    @property
    def ratio(self) -> float:
        return self.verifications / self.sends if self.sends else 1.0


def _bucket_width() -> int:
    return max(1, int(_monitor()["WINDOW"]) // BUCKETS)


def _keys(scope: str, kind: str, now: float | None = None) -> list[str]:
    return list(bucket_keys(f"ciam_otp:conv:{scope}:{kind}", _bucket_width(), BUCKETS, now))


def _timeout() -> int:
    return int(_monitor()["WINDOW"]) + _bucket_width()


def _count(scope: str, kind: str) -> None:
    if counters.cache_is_down():  # each call would wait for a timeout
        return
    try:
        store.bump(_keys(scope, kind)[-1], _timeout())
    except counters.CacheUnavailable:  # monitoring must never fail a verification
        logger.warning("conversion monitor could not count (cache unavailable)")


def _sum(keys: list[str], values: Mapping[str, Any]) -> int:
    return sum(int(values.get(k) or 0) for k in keys)


def conversion(scope: str) -> Conversion:
    """Sends and verifications of ``scope`` in the window (0 and 0 while the cache is down).

    ``scope`` is ``prefix:<digits>`` or ``client:<pk>``.
    """
    if counters.cache_is_down():
        return Conversion(0, 0)
    sends_keys, verify_keys = _keys(scope, "s"), _keys(scope, "v")
    try:
        values = store.get_many(sends_keys + verify_keys)
    except counters.CacheUnavailable:
        return Conversion(0, 0)
    return Conversion(sends=_sum(sends_keys, values), verifications=_sum(verify_keys, values))


#: The names of the monitor's sums in a count's result.
SENDS = "prefix sends"
VERIFICATIONS = "prefix verifications"
VERIFIED_LATELY = "prefix verified lately"


@dataclass(frozen=True)
class Watch:
    """What the monitor counts and reads with one send, declared before it is counted.

    Its parts go into the send's ``CountPlan`` beside the rate limits, so on
    Redis they ride in the same atomic round trip; :func:`refusal` and
    :func:`record_send` then read the result's fields by name.
    """

    #: ``None`` when the monitor does not judge this send (no phone prefix, monitor off).
    prefix: str | None = None
    #: The client's and the prefix's send buckets: handed back with the recipient's hits.
    bumps: tuple[Bump, ...] = ()
    #: The prefix's sends and verifications in the window, and its "verified lately" marker.
    sums: tuple[Sum, ...] = ()
    #: The prefix's numbers in the window, in sets (the new-prefix caps), one per cap.
    distinct: tuple[Distinct, ...] = ()
    #: The caps this send is held to (:func:`caps`); each one's scope names its ``Distinct``.
    caps: tuple[tuple[str, int], ...] = ()


def known_key(prefix: str) -> str:
    """Set for ``PREFIX_MEMORY`` seconds by every verified code to a number of ``prefix``."""
    return f"ciam_otp:conv:prefix:{prefix}:known"


def _new_prefix_numbers() -> int:
    """The configured cap for unproven prefixes (0: none)."""
    return int(_monitor().get("NEW_PREFIX_NUMBERS") or 0)


def under_attack() -> bool:
    """Whether the site is tightened (``sitewide.py``) or ``ATTACK_BLOCKS`` prefixes are blocked.

    Read from this process's latest count and its copy of the blocked
    prefixes: no query, no round trip.
    """
    if sitewide.tightened_here():
        return True
    blocks = int(_monitor().get("ATTACK_BLOCKS") or 0)
    if not blocks:
        return False
    now = timezone.now()
    return sum(1 for until in snapshots.blocked_prefixes.get().values() if until > now) >= blocks


def caps(prefix: str, e164: str) -> tuple[tuple[str, int], ...]:
    """The number caps of an unproven prefix, now: ``((scope, cap), ...)``.

    Always the prefix's own: ``NEW_PREFIX_NUMBERS`` different numbers per
    window. While the site is :func:`under_attack`, also each range of
    neighbouring numbers (the first ``ATTACK_RANGE_LENGTH`` digits: 100
    numbers by default) gets codes for ``ATTACK_RANGE_NUMBERS`` numbers: bots
    walk adjacent numbers, people's numbers are not neighbours, so a bot that
    spreads over many blocks is paid about one code per block instead of
    three, and people in the same block are not refused for each other.
    """
    config = _monitor()
    cap = _new_prefix_numbers()
    if not cap:
        return ()
    found = [(f"prefix:{prefix}", cap)]
    length = int(config.get("ATTACK_RANGE_LENGTH") or 0)
    numbers = int(config.get("ATTACK_RANGE_NUMBERS") or 0)
    if length and numbers and e164 and under_attack():
        digits = e164.lstrip("+")[:length]
        # The range is named by a keyed hash: its digits are most of a phone number.
        found.append((f"range:{crypto.hash_recipient('range:' + digits)[:32]}", numbers))
    return tuple(found)


def watch(prefix: str | None, client_pk: int, recipient_hash: str = "", e164: str = "") -> Watch:
    """The monitor's part of one send's count (see :class:`Watch`)."""
    if not _monitor().get("ENABLED", True):
        return Watch()
    now = time.time()
    timeout = _timeout()
    bumps = [Bump(_keys(f"client:{client_pk}", "s", now)[-1], timeout)]
    if prefix is None:
        return Watch(None, tuple(bumps))
    scope = f"prefix:{prefix}"
    bumps.append(Bump(_keys(scope, "s", now)[-1], timeout))
    sums = (
        Sum(SENDS, tuple(_keys(scope, "s", now))),
        Sum(VERIFICATIONS, tuple(_keys(scope, "v", now))),
        Sum(VERIFIED_LATELY, (known_key(prefix),)),
    )
    limits = caps(prefix, e164) if recipient_hash else ()
    distinct = []
    for counted_scope, cap in limits:
        numbers = tuple(_keys(counted_scope, "n", now))
        distinct.append(Distinct(counted_scope, recipient_hash, numbers[-1], numbers, cap, timeout))
    return Watch(prefix, tuple(bumps), sums, tuple(distinct), limits)


def _over_the_line(stats: Conversion) -> bool:
    config = _monitor()
    return stats.sends >= int(config["MIN_SENDS"]) and stats.ratio < float(config["MIN_RATIO"])


def refusal(watch: Watch, result: CountResult | None) -> RateLimitExceeded | None:
    """The monitor's refusal of a send that passed every limit, or ``None``.

    ``result`` is what counting this send found (``None``: nothing was
    counted, the cache is down): the sums and distinct counts ``watch``
    asked for, with this send already in them.

    Two refusals:

    * **a block this process has not seen.** When the sends *before* this one
      already crossed the monitor's line, another send blocked the prefix,
      maybe in another process whose block this process's copy of the table
      (``snapshots.py``) has not seen yet, or the block's cool-down ended
      while the window still holds the sends that caused it. The block is
      (re)written, which also refreshes this process's copy. So, across any
      number of processes and concurrent sends, at most ``MIN_SENDS`` codes
      reach a prefix that never verifies in a window (on Redis, where the
      count is atomic).
    * **an unproven prefix.** A prefix with no verified code in the last
      ``PREFIX_MEMORY`` seconds gets codes for at most ``NEW_PREFIX_NUMBERS``
      different numbers per window (and, while :func:`under_attack`, each
      range of neighbouring numbers for ``ATTACK_RANGE_NUMBERS``: see
      :func:`caps`), until one of them is verified: pumping
      bots spread over many number blocks, a few codes each, and never verify;
      people verify. Counting numbers, not sends, lets a person whose code is
      slow ask again without closing their block to their neighbours.
    """
    prefix = watch.prefix
    if prefix is None or result is None or SENDS not in result.sums:
        return None
    before = Conversion(sends=result.sums[SENDS] - 1, verifications=result.sums[VERIFICATIONS])
    if before.sends and _over_the_line(before):
        block_prefix(prefix, before)
        return _paused(prefix)
    if not watch.caps or result.sums[VERIFIED_LATELY]:  # none, or a code to it was verified
        return None
    over = [(scope, cap) for scope, cap in watch.caps if result.distinct[scope] > cap]
    if not over:
        return None
    days = int(_monitor().get("PREFIX_MEMORY") or 0) // 86400
    scope, cap = over[0]
    where = "numbers" if scope.startswith("prefix:") else "neighbouring numbers"
    block_prefix(
        prefix,
        Conversion(sends=before.sends, verifications=0),
        reason=f"codes to {cap} {where}, none verified; no code to it verified in {days} days",
    )
    return _paused(prefix)


def _paused(prefix: str) -> RateLimitExceeded:
    return blocked_error(prefix) or RateLimitExceeded(
        retry_after=int(_monitor()["COOLDOWN"]),
        description="Codes to numbers like this one are paused. Try again later.",
    )


def record_send(prefix: str | None, result: CountResult | None) -> None:
    """After a send: block ``prefix`` when its conversion, counted with this send, fell too low.

    ``result`` is the send's count (``None``: nothing was counted, the cache
    is down), which already holds this send: nothing is left to count here.
    """
    if prefix is None or result is None or SENDS not in result.sums:
        return
    stats = Conversion(sends=result.sums[SENDS], verifications=result.sums[VERIFICATIONS])
    if _over_the_line(stats):
        block_prefix(prefix, stats)


def record_verification(prefix: str | None, client_pk: int) -> None:
    """Count a verification (of a code that was sent, not a test recipient's)."""
    if not _monitor().get("ENABLED", True):
        return
    _count(f"client:{client_pk}", "v")
    if prefix is not None:
        _count(f"prefix:{prefix}", "v")
        sitewide.record_verification()
        vouch_prefix(prefix)
        _lift(prefix)


def _lift(prefix: str) -> None:
    """A code to a blocked prefix was verified: lift the block and let the counters judge again.

    A block for an unproven prefix ends here: its people verify. A block for
    a low verified/sent ratio comes back at the next send if one verification
    did not mend the ratio (the counters are kept, unlike the admin's unblock).
    Costs nothing unless this process's copy of the table shows the prefix blocked.
    """
    if prefix not in snapshots.blocked_prefixes.get():
        return
    BlockedPrefix.objects.lift(prefix, timezone.now())
    snapshots.table_changed(BlockedPrefix)  # update() sends no post_save


def vouch_prefix(prefix: str) -> None:
    """``prefix`` is proven (a code to it was verified, or an admin vouched for it).

    Lifts the new-prefix cap for ``PREFIX_MEMORY`` seconds. Public so that a
    site moving from another OTP provider can vouch for the blocks its people
    verified there (and the attack simulation for a site live for a month).
    """
    if not _new_prefix_numbers() or counters.cache_is_down():
        return
    try:
        store.set_value(known_key(prefix), 1, int(_monitor().get("PREFIX_MEMORY") or 0) or None)
    except counters.CacheUnavailable:  # monitoring must never fail a verification
        logger.warning("conversion monitor could not mark a prefix (cache unavailable)")


def block_prefix(prefix: str, stats: Conversion, reason: str = "") -> BlockedPrefix:
    until = timezone.now() + dt.timedelta(seconds=int(_monitor()["COOLDOWN"]))
    reason = reason or (
        f"{stats.verifications} verified of {stats.sends} sent in the last {_monitor()['WINDOW']} s"
    )
    blocked = BlockedPrefix.objects.block(
        prefix,
        until=until,
        reason=reason,
        sends=stats.sends,
        verifications=stats.verifications,
        now=timezone.now(),
    )
    logger.warning("prefix +%s… blocked until %s: %s", prefix, until.isoformat(), reason)
    signals.prefix_blocked.send(sender=BlockedPrefix, blocked_prefix=blocked, stats=stats)
    return blocked


def unblock_prefix(prefix: str) -> int:
    """Lift a block now (the admin's action); returns how many blocks were lifted.

    Applies at once in this process and within ``LOOKUP_CACHE_SECONDS`` in the others.
    """
    if not counters.cache_is_down():
        scope = f"prefix:{prefix}"
        try:  # a fresh start, or the old sends would block the prefix again at once
            store.delete_many(_keys(scope, "s") + _keys(scope, "v") + _keys(scope, "n"))
        except counters.CacheUnavailable:  # the block is lifted all the same
            logger.warning("could not reset the conversion counters of an unblocked prefix")
        vouch_prefix(prefix)  # an admin vouches for it: no new-prefix cap either
    lifted = BlockedPrefix.objects.lift(prefix, timezone.now())
    snapshots.table_changed(BlockedPrefix)  # update() sends no post_save
    return lifted
