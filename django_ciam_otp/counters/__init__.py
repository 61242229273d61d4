"""Counters behind one interface: a plan of what to count in, a typed result out.

* ``plan.py``: :class:`CountPlan` (limit groups, bumps, marker, sums,
  distinct counts) and :class:`CountResult`, with the semantics every store keeps;
* ``rates.py``: rates, windows and this app's counter keys (``ciam_otp:rl:...``);
* ``base.py``: the :class:`CounterStore` protocol;
* ``redis.py`` (+ ``count.lua``, ``refund.lua``): one atomic round trip on Redis;
* ``cache.py``: the same plan on any Django cache;
* ``store.py``: which store, and the per-process breaker; the only way in.

The rules that fill the plans live in ``ratelimits.py`` and ``abuse.py``.
"""

from __future__ import annotations

from .base import CacheUnavailable, CounterStore
from .cache import CacheStore
from .plan import (
    CALLER,
    RECIPIENT,
    Bump,
    CountPlan,
    CountResult,
    Distinct,
    LimitGroup,
    Marker,
    Rate,
    Sum,
)
from .rates import parse_rate, rates_for, wait_for
from .redis import RedisStore, redis_access
from .store import (
    BREAKER_SECONDS,
    cache_is_down,
    counter_cache,
    get_store,
    reset_breaker,
    trip_breaker,
)

__all__ = [
    "BREAKER_SECONDS",
    "CALLER",
    "RECIPIENT",
    "Bump",
    "CacheStore",
    "CacheUnavailable",
    "CountPlan",
    "CountResult",
    "CounterStore",
    "Distinct",
    "LimitGroup",
    "Marker",
    "Rate",
    "RedisStore",
    "Sum",
    "cache_is_down",
    "counter_cache",
    "get_store",
    "parse_rate",
    "rates_for",
    "redis_access",
    "reset_breaker",
    "trip_breaker",
    "wait_for",
]
