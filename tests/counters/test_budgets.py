"""Budgets (token buckets) on every store: the same answers on Redis and on any cache.

Redis refills on its own clock (``TIME`` inside the script), which a test
cannot move: the tests either sleep a little with a fast refill, or age a
bucket by moving its last refill back (``age``), the one place that knows
how each store keeps a bucket.
"""

from __future__ import annotations

import time

import pytest

from django_ciam_otp import counters
from django_ciam_otp.counters import (
    BUDGET_NOT_APPLIED,
    BUDGET_REFUSED,
    BUDGET_TAKEN,
    RECIPIENT,
    Budget,
    Bump,
    CountPlan,
    Distinct,
    LimitGroup,
    Marker,
    rates_for,
)

MODE = "ciam_otp:test:mode"
KNOWN = "ciam_otp:test:known"


def bucket(capacity: float = 3, per_second: float = 0.0, **conditions: str) -> Budget:
    return Budget("site", "ciam_otp:test:bucket", capacity, per_second, 3600, **conditions)


def take(store: counters.CounterStore, budget: Budget, *, groups=()) -> int | None:
    return store.count(CountPlan(tuple(groups), budgets=(budget,))).budgets.get(budget.name)


def left(store: counters.CounterStore, budget: Budget) -> float:
    return store.budget_left(budget.key, budget.capacity, budget.per_second)


def age(store: counters.CounterStore, budget: Budget, seconds: float) -> None:
    """As if ``seconds`` more had passed since the bucket was last used."""
    if isinstance(store, counters.RedisStore):
        access = store.access
        access.client.hincrbyfloat(access.make_key(budget.key), "at", -seconds)
    else:
        assert isinstance(store, counters.CacheStore)
        tokens, at = store.cache.get(budget.key)
        store.cache.set(budget.key, (tokens, at - seconds), budget.ttl)


def test_a_new_budget_is_full_gives_its_capacity_then_refuses(store):
    budget = bucket(capacity=3)
    assert left(store, budget) == 3
    assert [take(store, budget) for _ in range(4)] == [BUDGET_TAKEN] * 3 + [BUDGET_REFUSED]
    assert left(store, budget) == 0  # a refusal takes nothing, and there was nothing


def test_a_budget_applies_only_when_its_when_key_exists(store):
    budget = bucket(capacity=1, when=MODE)
    assert take(store, budget) == BUDGET_NOT_APPLIED
    assert take(store, budget) == BUDGET_NOT_APPLIED
    assert left(store, budget) == 1  # untouched
    store.add(MODE, int(time.time()), 60)  # written through the Django cache, as abuse.py does
    assert [take(store, budget) for _ in range(2)] == [BUDGET_TAKEN, BUDGET_REFUSED]


def test_a_budget_does_not_apply_while_its_unless_key_exists(store):
    budget = bucket(capacity=1, when=MODE, unless=KNOWN)
    store.set(MODE, 1, 60)
    store.set(KNOWN, 1, 60)
    assert [take(store, budget) for _ in range(2)] == [BUDGET_NOT_APPLIED] * 2
    store.delete_many([KNOWN])
    assert [take(store, budget) for _ in range(2)] == [BUDGET_TAKEN, BUDGET_REFUSED]


def test_a_budget_refills_with_time(store):
    budget = bucket(capacity=1, per_second=4)  # a token every 0.25 s
    assert [take(store, budget) for _ in range(2)] == [BUDGET_TAKEN, BUDGET_REFUSED]
    time.sleep(0.3)
    assert take(store, budget) == BUDGET_TAKEN


def test_refused_attempts_keep_the_fraction_refilled_so_far(store):
    budget = bucket(capacity=1, per_second=1)
    assert take(store, budget) == BUDGET_TAKEN
    age(store, budget, 0.5)
    assert take(store, budget) == BUDGET_REFUSED
    age(store, budget, 0.6)
    assert take(store, budget) == BUDGET_TAKEN  # 0.5 + 0.6 tokens


def test_a_budget_never_refills_past_its_capacity(store):
    budget = bucket(capacity=2, per_second=1)
    assert [take(store, budget) for _ in range(3)] == [BUDGET_TAKEN] * 2 + [BUDGET_REFUSED]
    age(store, budget, 3600)
    assert left(store, budget) == 2
    assert [take(store, budget) for _ in range(3)] == [BUDGET_TAKEN] * 2 + [BUDGET_REFUSED]


def test_a_forgotten_budget_is_full_again(store):
    budget = bucket(capacity=1)
    take(store, budget)
    store.delete_many([budget.key])  # as if its ttl had passed
    assert take(store, budget) == BUDGET_TAKEN


def test_no_budget_is_evaluated_when_a_group_refused(store):
    budget = bucket(capacity=2)
    blocked = LimitGroup("blocked", "x", RECIPIENT, forced=True)
    assert store.count(CountPlan((blocked,), budgets=(budget,))).budgets == {}
    assert left(store, budget) == 2
    limited = LimitGroup("sms", "v", RECIPIENT, rates_for("sms", "v", ["1/m"]))
    assert take(store, budget, groups=[limited]) == BUDGET_TAKEN
    refused = store.count(CountPlan((limited,), budgets=(budget,)))
    assert (refused.refused, refused.budgets) == ("sms", {})
    assert left(store, budget) == 1  # the refused count took nothing


def test_a_refund_gives_no_token_back(store):
    budget = bucket(capacity=1)
    result = store.count(CountPlan(bumps=(Bump("ciam_otp:test:s", 60),), budgets=(budget,)))
    assert result.budgets == {"site": BUDGET_TAKEN}
    assert result.recipient_keys == ("ciam_otp:test:s",)  # the budget's key is no counter
    store.refund(result.recipient_keys)
    assert left(store, budget) == 0
    assert take(store, budget) == BUDGET_REFUSED


def test_budgets_come_after_the_marker_and_the_distinct_counts(store):
    # The budget sees the marker this very send sets, and each budget answers by name.
    marker = Marker("ciam_otp:test:sent", 60)
    plan = CountPlan(
        marker=marker,
        distinct=(Distinct("numbers", "a", "ciam_otp:test:n", ("ciam_otp:test:n",), 1, 60),),
        budgets=(
            bucket(capacity=1, when=marker.key),
            Budget("other", "ciam_otp:test:other", 1, 0, 60, unless=marker.key),
        ),
    )
    result = store.count(plan)
    assert result.marker_was_set is False
    assert result.distinct == {"numbers": 1}
    assert result.budgets == {"site": BUDGET_TAKEN, "other": BUDGET_NOT_APPLIED}


def test_a_budget_is_validated_and_named_uniquely_in_its_plan():
    with pytest.raises(ValueError, match="capacity"):
        bucket(capacity=0)
    with pytest.raises(ValueError, match="capacity"):
        bucket(capacity=float("inf"))
    with pytest.raises(ValueError, match="per_second"):
        bucket(per_second=-1)
    with pytest.raises(ValueError, match="ttl"):
        Budget("site", "k", 1, 1, 0)
    with pytest.raises(ValueError, match="unique"):
        CountPlan(budgets=(bucket(), bucket()))
    assert CountPlan(budgets=(bucket(),)).touches_the_cache
