"""A circuit per SMS backend: after repeated transient failures, skip it for a while.

A provider that times out on every call costs each delivery a full timeout
before failover reaches the next backend. After ``SMS_CIRCUIT["FAILURES"]``
transient failures within ``WINDOW`` seconds, the backend's circuit *opens*:
for ``COOL_DOWN`` seconds deliveries skip it and go straight to the next
backend of their route. When the cool-down is over the circuit is
*half-open*: the next delivery tries the backend again (one delivery of all
processes: the first to claim the trial); a success closes the circuit (its
failures are forgotten), a failure opens it again at once.

Shared by every web and worker process through the rate-limit cache (as
``breaker.py``'s stops are), and read at most once per
``LOOKUP_CACHE_SECONDS`` per process. A cache that does not answer means "closed":
every backend is tried, as before there were circuits.

This is not ``breaker.py``: that one stops a backend that *cannot* send
anything until an operator acts (credentials, arrears); this one routes around
a backend that is failing now and may recover by itself.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.signals import setting_changed

from . import counters
from .conf import otp_settings
from .counters.store import counter_cache

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# This process's copy: backend name -> (read at, open until or None).
_seen: dict[str, tuple[float, float | None]] = {}


def _open_key(name: str) -> str:
    return f"ciam_otp:circuit:{name}:open"


def _failures_key(name: str) -> str:
    return f"ciam_otp:circuit:{name}:failures"


def _config() -> tuple[int, int, int]:
    circuit = otp_settings.SMS_CIRCUIT
    return int(circuit["FAILURES"]), int(circuit["WINDOW"]), int(circuit["COOL_DOWN"])


def state(name: str) -> str:
    """``CLOSED``, ``OPEN`` (skip it) or ``HALF_OPEN`` (cool-down over, try it once)."""
    now = time.monotonic()
    seen = _seen.get(name)
    if seen is None or now - seen[0] >= float(otp_settings.LOOKUP_CACHE_SECONDS):
        seen = (now, _read(name))
        _seen[name] = seen
    until = seen[1]
    if until is None:
        return CLOSED
    return OPEN if until > time.time() else HALF_OPEN


def record_failure(name: str) -> bool:
    """A transient failure of backend ``name``; whether its circuit opened now."""
    failures, window, cool_down = _config()
    if counters.cache_is_down():
        return False
    try:
        cache = counter_cache()
        if state(name) == HALF_OPEN:  # the trial failed: open again at once
            return _open(name, cool_down, window)
        cache.add(_failures_key(name), 0, window)
        try:
            count = cache.incr(_failures_key(name))
        except ValueError:  # the window ended between add and incr: this failure starts one
            cache.set(_failures_key(name), 1, window)
            count = 1
        if count >= failures:
            return _open(name, cool_down, window)
    except Exception:  # noqa: BLE001 - no shared circuit without the cache; every backend is tried
        counters.trip_breaker()
        return False
    return False


def claim_trial(name: str) -> bool:
    """Whether this delivery may make the half-open backend's one trial (first come wins).

    Without it every process would send a trial at once after the cool-down.
    A cache that does not answer lets the trial go ahead.
    """
    _, window, cool_down = _config()
    if counters.cache_is_down():
        return True
    try:
        return bool(counter_cache().add(f"ciam_otp:circuit:{name}:trial", 1, cool_down))
    except Exception:  # noqa: BLE001 - no shared record: try it
        counters.trip_breaker()
        return True


def record_success(name: str) -> None:
    """Backend ``name`` accepted a message: a half-open circuit closes."""
    seen = _seen.get(name)
    if seen is not None and seen[1] is None:
        return  # closed as far as this process knows: nothing to write on the hot path
    _seen[name] = (time.monotonic(), None)
    if counters.cache_is_down():
        return
    try:
        counter_cache().delete_many(
            [_open_key(name), _failures_key(name), f"ciam_otp:circuit:{name}:trial"]
        )
    except Exception:  # noqa: BLE001 - it closes by itself when the record expires
        counters.trip_breaker()
    logger.info("SMS backend %s: circuit closed", name)


def _open(name: str, cool_down: int, window: int) -> bool:
    until = time.time() + cool_down
    # The record outlives the cool-down so the first try after it is known as a trial.
    counter_cache().set(_open_key(name), until, cool_down + window)
    counter_cache().delete(_failures_key(name))
    _seen[name] = (time.monotonic(), until)
    logger.warning("SMS backend %s: circuit open for %d s (transient failures)", name, cool_down)
    return True


def _read(name: str) -> float | None:
    if counters.cache_is_down():
        return None
    try:
        value = counter_cache().get(_open_key(name))
    except Exception:  # noqa: BLE001 - an unreadable circuit is a closed one
        counters.trip_breaker()
        return None
    return float(value) if isinstance(value, int | float) else None


def forget_local_copy(**kwargs: Any) -> None:
    """Drop this process's copy (tests; a settings change)."""
    _seen.clear()


setting_changed.connect(forget_local_copy)
