"""Defences against SMS pumping: prefix velocity limits and the conversion monitor.

SMS pumping sends codes to ranges of premium numbers that never verify. Two
signals catch it early, before the provider's own defences:

* **velocity** — many sends to numbers sharing a prefix (``PREFIX_LENGTH``
  digits of the E.164 number) within minutes; counted with django-ratelimit
  like every other limit (see ``ratelimits.py``);
* **conversion** — sends to a prefix that are not followed by verifications.
  Sends and verifications are counted per prefix (and per client, for the
  dashboard) in time buckets in the shared cache; when a prefix with at least
  ``MIN_SENDS`` sends in the window has a verified/sent ratio below
  ``MIN_RATIO``, it is blocked for ``COOLDOWN`` seconds (a ``BlockedPrefix``
  row the admin shows and can lift) and ``prefix_blocked`` fires.

On Redis the send's counters ride in the rate limits' round trip
(:func:`send_counters`, ``ratelimits.count_send``): counted before the send
and handed back with the recipient's hits when nothing is sent. Blocks are
read from a per-process copy of the table (``snapshots.py``): a block or an
unblock saved in another process applies within ``LOOKUP_CACHE_SECONDS``.
While the cache is known to be down (``ratelimits.cache_is_down()``) the
monitor neither counts nor reads: it waits for no timeout and never fails a
send.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone

from . import ratelimits, signals, snapshots
from .conf import otp_settings
from .exceptions import RateLimitExceeded
from .models import BlockedPrefix

logger = logging.getLogger(__name__)

BUCKETS = 6  # the window is counted in this many buckets (a sliding window in steps)


def phone_prefix(e164: str) -> str:
    """``+8613612345678`` -> ``861361234`` (with the default ``PREFIX_LENGTH`` of 9)."""
    return e164.lstrip("+")[: int(otp_settings.PREFIX_LENGTH)]


def _cache():  # type: ignore[no-untyped-def]
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _monitor() -> dict:  # type: ignore[type-arg]
    config: dict = otp_settings.CONVERSION_MONITOR  # type: ignore[type-arg]
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


def check_blocked(prefix: str) -> None:
    """Raise ``RateLimitExceeded`` while ``prefix`` is blocked by the conversion monitor."""
    error = blocked_error(prefix)
    if error is not None:
        raise error


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
    width = _bucket_width()
    current = int((now if now is not None else time.time()) // width)
    return [f"ciam_otp:conv:{scope}:{kind}:{b}" for b in range(current - BUCKETS + 1, current + 1)]


def _timeout() -> int:
    return int(_monitor()["WINDOW"]) + _bucket_width()


def _count(scope: str, kind: str) -> None:
    if ratelimits.cache_is_down():  # each call would wait for a timeout
        return
    key = _keys(scope, kind)[-1]
    cache = _cache()
    try:
        if not cache.add(key, 1, _timeout()):
            cache.incr(key)
    except Exception:  # noqa: BLE001 - monitoring must never fail a send
        ratelimits.trip_breaker()
        logger.warning("conversion monitor could not count (cache unavailable)")


def _sum(keys: list[str], values: dict[str, int]) -> int:
    return sum(int(values.get(k) or 0) for k in keys)


def conversion(scope: str) -> Conversion:
    """Sends and verifications of ``scope`` in the window (0 and 0 while the cache is down).

    ``scope`` is ``prefix:<digits>`` or ``client:<pk>``.
    """
    if ratelimits.cache_is_down():
        return Conversion(0, 0)
    sends_keys, verify_keys = _keys(scope, "s"), _keys(scope, "v")
    try:
        values = _cache().get_many(sends_keys + verify_keys)
    except Exception:  # noqa: BLE001
        ratelimits.trip_breaker()
        return Conversion(0, 0)
    return Conversion(sends=_sum(sends_keys, values), verifications=_sum(verify_keys, values))


@dataclass(frozen=True)
class SendCounters:
    """The monitor's counters of one send, for ``ratelimits.count_send`` to bump and read."""

    counters: tuple[ratelimits.Counter, ...] = ()
    #: The prefix's send buckets and verification buckets, each to be added up.
    sums: tuple[tuple[str, ...], ...] = ()


def send_counters(prefix: str | None, client_pk: int) -> SendCounters:
    """What :func:`record_send` would count and add up, to do in the rate limits' round trip."""
    if not _monitor().get("ENABLED", True):
        return SendCounters()
    now = time.time()
    timeout = _timeout()
    counters = [ratelimits.Counter(_keys(f"client:{client_pk}", "s", now)[-1], timeout)]
    if prefix is None:
        return SendCounters(tuple(counters))
    scope = f"prefix:{prefix}"
    counters.append(ratelimits.Counter(_keys(scope, "s", now)[-1], timeout))
    sums = (tuple(_keys(scope, "s", now)), tuple(_keys(scope, "v", now)))
    return SendCounters(tuple(counters), sums)


def record_send(prefix: str | None, client_pk: int, counted: list[int] | None = None) -> None:
    """Count a send; block the prefix when its conversion has fallen too low.

    ``counted``: the prefix's sends and verifications in the window (the sums
    of :func:`send_counters`) after ``ratelimits.count_send`` counted this
    send, so nothing is left to count here; ``None`` counts and reads now.
    """
    if not _monitor().get("ENABLED", True):
        return
    if counted is None:
        _count(f"client:{client_pk}", "s")
        if prefix is None:
            return
        _count(f"prefix:{prefix}", "s")
        stats = conversion(f"prefix:{prefix}")
    elif prefix is None or len(counted) != 2:
        return
    else:
        stats = Conversion(sends=counted[0], verifications=counted[1])
    config = _monitor()
    if stats.sends >= int(config["MIN_SENDS"]) and stats.ratio < float(config["MIN_RATIO"]):
        block_prefix(prefix, stats)


def record_verification(prefix: str | None, client_pk: int) -> None:
    """Count a verification (of a code that was sent, not a test recipient's)."""
    if not _monitor().get("ENABLED", True):
        return
    _count(f"client:{client_pk}", "v")
    if prefix is not None:
        _count(f"prefix:{prefix}", "v")


def block_prefix(prefix: str, stats: Conversion) -> BlockedPrefix:
    until = timezone.now() + dt.timedelta(seconds=int(_monitor()["COOLDOWN"]))
    reason = (
        f"{stats.verifications} verified of {stats.sends} sent in the last {_monitor()['WINDOW']} s"
    )
    blocked, created = BlockedPrefix.objects.update_or_create(
        prefix=prefix,
        defaults={
            "blocked_until": until,
            "reason": reason,
            "sends": stats.sends,
            "verifications": stats.verifications,
            "created_at": timezone.now(),
        },
    )
    logger.warning("prefix +%s… blocked until %s: %s", prefix, until.isoformat(), reason)
    signals.prefix_blocked.send(sender=BlockedPrefix, blocked_prefix=blocked, stats=stats)
    return blocked


def unblock_prefix(prefix: str) -> int:
    """Lift a block now (the admin's action); returns how many blocks were lifted.

    Applies at once in this process and within ``LOOKUP_CACHE_SECONDS`` in the others.
    """
    if not ratelimits.cache_is_down():
        try:  # a fresh start, or the old sends would block the prefix again at once
            _cache().delete_many(_keys(f"prefix:{prefix}", "s") + _keys(f"prefix:{prefix}", "v"))
        except Exception:  # noqa: BLE001 - the block is lifted all the same
            ratelimits.trip_breaker()
            logger.warning("could not reset the conversion counters of an unblocked prefix")
    lifted = BlockedPrefix.objects.filter(prefix=prefix, blocked_until__gt=timezone.now()).update(
        blocked_until=timezone.now()
    )
    snapshots.table_changed(BlockedPrefix)  # update() sends no post_save
    return lifted
