"""``CacheStore``: any Django cache runs a :class:`CountPlan` with the plan's semantics.

Best effort, not atomic: between two of its calls another process may count
too. So each rate is incremented first and checked after (``count > limit``
refuses), as django-ratelimit counts, rather than read first: two concurrent
requests can never both pass a full counter, they can only both be refused.
A refused phase then hands back what it incremented, so it counts nothing
once its refusal is answered; the group's longer rates are only read once a
shorter one refused. A budget's state (tokens, last refill) is one cache
value, read and written back on ``time.time()``'s clock. Redis runs the same
plan in one atomic script (``redis.py``); ``tests/counters`` holds both to the
same answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.cache.backends.base import BaseCache

from .base import CacheUnavailable
from .plan import (
    BUDGET_NOT_APPLIED,
    BUDGET_REFUSED,
    BUDGET_TAKEN,
    Budget,
    CountPlan,
    CountResult,
    Distinct,
    LimitGroup,
    charged_keys,
    refill,
)


class CacheStore:
    """Counters in a Django cache (locmem, memcached, a database, a sharded Redis...)."""

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache

    # --- one send ------------------------------------------------------------------------

    def count(self, plan: CountPlan) -> CountResult:
        counts: dict[str, tuple[int, ...]] = {g.name: (0,) * len(g.rates) for g in plan.groups}
        refused = None
        groups = list(plan.groups)
        while groups and refused is None:
            phase = [g for g in groups if g.phase == groups[0].phase]
            groups = groups[len(phase) :]
            counted: list[str] = []
            for group in phase:
                found, full = self._hit(group, counted)
                counts[group.name] = found
                if full:
                    refused = group.name
                    self.refund(counted)  # a refused phase counts nothing
                    break
            if refused is None:  # counted: report the counts after this hit, as the script does
                for group in phase:
                    counts[group.name] = tuple(n + 1 for n in counts[group.name])
        if refused is not None:
            caller, recipient = charged_keys(plan, refused)
            return CountResult(refused, counts, caller_keys=caller, recipient_keys=recipient)
        bumped: list[bool] = []
        for bump in plan.bumps:
            bumped.append(bump.unless is None or not self.cache.has_key(bump.unless))
            if bumped[-1]:
                self.bump(bump.key, bump.ttl)
        caller, recipient = charged_keys(plan, None, bumped)
        marker_was_set = True
        if plan.marker is not None and self.cache.add(plan.marker.key, 1, plan.marker.ttl):
            marker_was_set = False
        elif plan.marker is not None:
            self.cache.set(plan.marker.key, 1, plan.marker.ttl)  # as SET EX: a fresh lifetime
        sums: dict[str, int] = {}
        if plan.sums:
            # Every key: this store keeps no memo of settled buckets.
            values = self.cache.get_many([k for total in plan.sums for k in total.keys])
            for total in plan.sums:
                sums[total.name] = sum(int(values.get(k) or 0) for k in total.keys)
        distinct = {count.name: self._distinct(count) for count in plan.distinct}
        budgets = {budget.name: self._take(budget) for budget in plan.budgets}
        return CountResult(
            None,
            counts,
            marker_was_set,
            sums,
            distinct,
            budgets=budgets,
            caller_keys=caller,
            recipient_keys=recipient,
        )

    def _hit(self, group: LimitGroup, counted: list[str]) -> tuple[tuple[int, ...], bool]:
        """Count ``group``, shortest window first: its counts as found, and whether it refuses.

        The keys it incremented are appended to ``counted``.
        """
        if group.forced:
            return (0,) * len(group.rates), True
        found: list[int] = []
        full = False
        for rate in group.rates:
            if full:  # only looking: the refusal's wait is the longest full window's
                found.append(int(self.cache.get(rate.key) or 0))
                continue
            if self.cache.add(rate.key, 1, rate.ttl):
                now = 1
            else:
                try:
                    now = int(self.cache.incr(rate.key))
                except ValueError:  # gone between the two calls, or the cache dropped both
                    if not self.cache.add(rate.key, 1, rate.ttl):
                        raise CacheUnavailable("cache refused the counter") from None
                    now = 1
            counted.append(rate.key)
            found.append(now - 1)
            full = now > rate.limit
        return tuple(found), full

    def _distinct(self, count: Distinct) -> int:
        union = count.window.keys  # every set: this store keeps no memo
        values = self.cache.get_many(list(union))
        seen: set[str] = set()
        for key in union:
            seen |= set(values.get(key) or ())
        if count.member in seen:
            return len(seen)
        if count.unless is not None and self.cache.has_key(count.unless):
            return len(seen)  # not counted: the sets as they are
        if len(seen) < count.cap:
            current = set(values.get(count.key) or ())
            self.cache.set(count.key, current | {count.member}, count.ttl)
        return len(seen) + 1

    def _take(self, budget: Budget) -> int:
        if budget.when is not None and not self.cache.has_key(budget.when):
            return BUDGET_NOT_APPLIED
        if budget.unless is not None and self.cache.has_key(budget.unless):
            return BUDGET_NOT_APPLIED
        now = time.time()
        tokens = refill(budget.capacity, budget.per_second, self._state(budget.key), now)
        taken = tokens >= 1
        self.cache.set(budget.key, (tokens - 1 if taken else tokens, now), budget.ttl)
        return BUDGET_TAKEN if taken else BUDGET_REFUSED

    def _state(self, key: str) -> tuple[float, float] | None:
        """``(tokens, at)`` as ``_take`` left it, or ``None`` (a new bucket, or not ours)."""
        value = self.cache.get(key)
        try:
            tokens, at = value
            return float(tokens), float(at)
        except (TypeError, ValueError):
            return None

    def budget_left(self, key: str, capacity: float, per_second: float) -> float:
        return refill(capacity, per_second, self._state(key), time.time())

    def refund(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self.cache.decr(key)
            except ValueError:  # expired: nothing to hand back
                pass

    # --- plain operations (the conversion monitor's) -------------------------------------

    def add(self, key: str, value: Any, ttl: int | None) -> bool:
        return bool(self.cache.add(key, value, ttl))

    def bump(self, key: str, ttl: int) -> None:
        if self.cache.add(key, 1, ttl):
            return
        try:
            self.cache.incr(key)
        except ValueError:  # expired between the two calls: this is its first count again
            self.cache.add(key, 1, ttl)

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Any]:
        return self.cache.get_many(list(keys))

    def set(self, key: str, value: Any, ttl: int | None) -> None:
        self.cache.set(key, value, ttl)

    def touch(self, key: str, ttl: int | None) -> bool:
        return bool(self.cache.touch(key, ttl))

    def delete_many(self, keys: Sequence[str]) -> None:
        self.cache.delete_many(list(keys))

    def hand_over(self, key: str, value: str, ms: int) -> bool:
        """Deletes ``key``: this store's counts read no lifetime, so no send relies on one."""
        self.cache.delete(key)
        return False
