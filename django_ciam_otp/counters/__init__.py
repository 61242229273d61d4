"""Counters behind one interface: a plan of what to count in, a typed result out.

* ``plan.py``: :class:`CountPlan` and :class:`CountResult`, with the
  semantics every store keeps. A plan's primitives:

  - :class:`LimitGroup` of :class:`Rate` s: limits that refuse a send, by phase
    (:data:`CALLER`, then :data:`RECIPIENT`);
  - :class:`Bump`: a plain counter incremented by a send that passed, skipped
    while its ``unless`` key exists (the conversion monitor's buckets);
  - :class:`Marker`: a key set by a send, telling whether it was there;
  - :class:`Sum`: plain counters (or any numeric key) read, added up;
  - :class:`Distinct`: a member counted among sets, up to a cap;
  - :class:`Buckets`: a sliding window's keys for either, its settled ones
    kept under a memo the Redis script reads instead (``rates.sliding_window``);
  - :class:`Budget`: a token bucket (capacity, refill per second) that
    applies ``when`` a key exists and ``unless`` another does, answering
    :data:`BUDGET_TAKEN`, :data:`BUDGET_REFUSED` or :data:`BUDGET_NOT_APPLIED`;
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
    BUDGET_NOT_APPLIED,
    BUDGET_REFUSED,
    BUDGET_TAKEN,
    CALLER,
    RECIPIENT,
    Buckets,
    Budget,
    Bump,
    CountPlan,
    CountResult,
    Distinct,
    LimitGroup,
    Marker,
    Rate,
    Sum,
)
from .rates import parse_rate, rates_for, sliding_window, wait_for
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
    "BUDGET_NOT_APPLIED",
    "BUDGET_REFUSED",
    "BUDGET_TAKEN",
    "CALLER",
    "RECIPIENT",
    "Buckets",
    "Budget",
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
    "sliding_window",
    "trip_breaker",
    "wait_for",
]
