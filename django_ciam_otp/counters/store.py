"""Which store counts, and the per-process breaker in front of it: the only way to the counters.

The counters live in the cache named by ``RATELIMIT_USE_CACHE`` (default
``"default"``), the setting sites already know from django-ratelimit. A plain
Redis cache (django-redis's ``DefaultClient``, Django's ``RedisCache``) gets
the :class:`RedisStore`, any other cache the :class:`CacheStore`.

When the cache does not answer, this process stops asking it for
:data:`BREAKER_SECONDS` (a circuit breaker): a hung Redis would otherwise cost
every later counter of the request, and of every request after it, a full
socket timeout. Every function here raises :class:`CacheUnavailable` in both
cases, so callers have one thing to catch; what a caller then does (fail
closed or open, skip the monitor) is its own rule.

Other records this app keeps in the same cache (idempotency records,
``breaker.py``'s provider stops, the client-authentication failure throttle's
django-ratelimit counters, the Tencent backend's notes) are not counters: they
read :func:`counter_cache` directly and honour the same breaker
(:func:`cache_is_down`, :func:`trip_breaker`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed

from .base import CacheUnavailable, CounterStore
from .cache import CacheStore
from .plan import CountPlan, CountResult
from .redis import RedisStore, redis_access

#: After the cache failed, this process treats it as down for this many seconds.
BREAKER_SECONDS = 2.0
_down_until = 0.0

T = TypeVar("T")


def cache_is_down() -> bool:
    """Whether the cache failed less than ``BREAKER_SECONDS`` ago in this process."""
    return time.monotonic() < _down_until


def trip_breaker() -> None:
    """Record a cache failure: this process leaves the cache alone for ``BREAKER_SECONDS``."""
    global _down_until
    _down_until = time.monotonic() + BREAKER_SECONDS


def reset_breaker(**kwargs: object) -> None:
    """Forget a cache failure (another cache was configured, or a test starts afresh)."""
    global _down_until
    _down_until = 0.0


setting_changed.connect(reset_breaker)


def counter_cache() -> BaseCache:
    """The Django cache that holds the counters (``RATELIMIT_USE_CACHE``)."""
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


#: The store of each cache object (Django makes one per thread and alias): asked twice or more
#: per send, and working out which store fits takes longer than the flag it sets.
_stores: weakref.WeakKeyDictionary[BaseCache, CounterStore] = weakref.WeakKeyDictionary()


def get_store() -> CounterStore:
    """The store for the counter cache as configured now (see the module)."""
    cache = counter_cache()
    store = _stores.get(cache)
    if store is None:
        access = redis_access(cache)
        store = CacheStore(cache) if access is None else RedisStore(cache, access)
        _stores[cache] = store
    return store


def _guarded(operation: Callable[[CounterStore], T]) -> T:
    if cache_is_down():
        raise CacheUnavailable("circuit breaker open")
    try:
        return operation(get_store())
    except Exception as exc:  # noqa: BLE001 - cache clients raise many types for "down"
        trip_breaker()
        raise CacheUnavailable(type(exc).__name__) from exc


def count(plan: CountPlan) -> CountResult:
    """Count ``plan`` (one atomic round trip on Redis) or raise :class:`CacheUnavailable`."""
    return _guarded(lambda store: store.count(plan))


def refund(keys: Sequence[str]) -> None:
    """Hand back one count of each of ``keys`` that still exists."""
    if keys:
        _guarded(lambda store: store.refund(keys))


def budget_left(key: str, capacity: float, per_second: float) -> float:
    """The tokens the ``Budget`` at ``key`` holds now, refilled and none taken (full if new).

    Read it here, not with ``get_many``: on Redis a budget's state is a hash.
    """
    return _guarded(lambda store: store.budget_left(key, capacity, per_second))


def add(key: str, value: Any, ttl: int | None) -> bool:
    return _guarded(lambda store: store.add(key, value, ttl))


def bump(key: str, ttl: int) -> None:
    _guarded(lambda store: store.bump(key, ttl))


def get_many(keys: Sequence[str]) -> Mapping[str, Any]:
    return _guarded(lambda store: store.get_many(keys))


def set_value(key: str, value: Any, ttl: int | None) -> None:
    _guarded(lambda store: store.set(key, value, ttl))


def delete_many(keys: Sequence[str]) -> None:
    _guarded(lambda store: store.delete_many(keys))


def touch(key: str, ttl: int | None) -> bool:
    """Give ``key`` a new lifetime; whether it existed."""
    return _guarded(lambda store: store.touch(key, ttl))


def hand_over(key: str, value: str, ms: int) -> bool:
    """``key`` set to ``value`` for ``ms`` ms; whether to wait them out (``CounterStore``)."""
    return _guarded(lambda store: store.hand_over(key, value, ms))
