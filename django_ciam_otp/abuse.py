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
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone

from . import signals
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


def check_blocked(prefix: str) -> None:
    """Raise ``RateLimitExceeded`` while ``prefix`` is blocked by the conversion monitor."""
    until = (
        BlockedPrefix.objects.filter(prefix=prefix, blocked_until__gt=timezone.now())
        .values_list("blocked_until", flat=True)
        .first()
    )
    if until is not None:
        wait = int((until - timezone.now()).total_seconds()) + 1
        raise RateLimitExceeded(
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
    width = _bucket_width()
    current = int((now if now is not None else time.time()) // width)
    return [f"ciam_otp:conv:{scope}:{kind}:{b}" for b in range(current - BUCKETS + 1, current + 1)]


def _count(scope: str, kind: str) -> None:
    key = _keys(scope, kind)[-1]
    cache = _cache()
    timeout = int(_monitor()["WINDOW"]) + _bucket_width()
    try:
        if not cache.add(key, 1, timeout):
            cache.incr(key)
    except Exception:  # noqa: BLE001 - monitoring must never fail a send
        logger.warning("conversion monitor could not count (cache unavailable)")


def conversion(scope: str) -> Conversion:
    """Sends and verifications of ``scope`` in the window.

    ``scope`` is ``prefix:<digits>`` or ``client:<pk>``.
    """
    sends_keys, verify_keys = _keys(scope, "s"), _keys(scope, "v")
    try:
        values = _cache().get_many(sends_keys + verify_keys)
    except Exception:  # noqa: BLE001
        return Conversion(0, 0)
    return Conversion(
        sends=sum(int(values.get(k, 0)) for k in sends_keys),
        verifications=sum(int(values.get(k, 0)) for k in verify_keys),
    )


def record_send(prefix: str | None, client_pk: int) -> None:
    """Count a send; block the prefix when its conversion has fallen too low."""
    if not _monitor().get("ENABLED", True):
        return
    _count(f"client:{client_pk}", "s")
    if prefix is None:
        return
    scope = f"prefix:{prefix}"
    _count(scope, "s")
    stats = conversion(scope)
    config = _monitor()
    if stats.sends >= int(config["MIN_SENDS"]) and stats.ratio < float(config["MIN_RATIO"]):
        block_prefix(prefix, stats)


def record_verification(prefix: str | None, client_pk: int) -> None:
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
    """Lift a block now (the admin's action); returns how many blocks were lifted."""
    _cache().delete_many(_keys(f"prefix:{prefix}", "s") + _keys(f"prefix:{prefix}", "v"))
    return BlockedPrefix.objects.filter(prefix=prefix, blocked_until__gt=timezone.now()).update(
        blocked_until=timezone.now()
    )
