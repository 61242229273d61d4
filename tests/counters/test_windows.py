"""Sliding windows whose settled buckets travel as a memo: the same answers, fewer keys.

A send used to pass every bucket of the site-wide view (a day of hours, ten
minutes of minutes: about 190 keys) to the Redis script. Buckets older than
the two newest never change again, so their total (a sum) or their union (a
distinct count) is kept once under a memo named for their range, and a send
passes the memo and the open buckets. These tests hold the memo to the
answers of the plain keys on every store, and pin the round trips on Redis.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_ciam_otp import counters, sitewide
from django_ciam_otp.counters import (
    RECIPIENT,
    Buckets,
    CountPlan,
    Distinct,
    LimitGroup,
    Sum,
    rates_for,
    sliding_window,
    wire,
)
from django_ciam_otp.counters.rates import OPEN_BUCKETS, bucket_keys

STEM = "ciam_otp:test:w"
WIDTH = 60
NOW = 1_746_086_400.0 + 0.5  # a bucket's first half second: its neighbours are whole
CURRENT = int(NOW // WIDTH)


def index(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


# --- naming -------------------------------------------------------------------------------


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 7200),
    count=st.integers(1, 200),
    skip=st.integers(0, 10),
    now=st.floats(0, 4e9, allow_nan=False),
)
def test_a_window_names_the_same_buckets_and_settles_all_but_the_newest_two(
    width, count, skip, now
):
    skip_last = min(skip, count - 1)
    window = sliding_window(STEM, width, count, now, skip_last=skip_last)
    current = int(now // width)
    assert window.keys == bucket_keys(STEM, width, count, now, skip_last=skip_last)
    settled = [k for k in window.keys if index(k) <= current - OPEN_BUCKETS]
    if len(settled) < 2:  # a memo for one key would save nothing
        assert (window.memo, window.closed, window.open) == (None, (), window.keys)
        return
    assert window.closed == tuple(settled)
    assert window.closed + window.open == window.keys
    assert all(index(k) > current - OPEN_BUCKETS for k in window.open)
    # The memo names its range, so a window that moved on names another one.
    assert window.memo == f"{STEM}:settled:{index(settled[0])}-{index(settled[-1])}"
    assert window.memo_ttl == 2 * width
    later = sliding_window(STEM, width, count, now + width, skip_last=skip_last)
    assert later.memo != window.memo


def test_a_memo_needs_settled_keys_and_a_lifetime():
    with pytest.raises(ValueError, match="settled"):
        Buckets(("a", "b"), 0, "memo", 60)
    with pytest.raises(ValueError, match="ttl"):
        Buckets(("a", "b"), 2, "memo", 0)
    settled_target = sliding_window(STEM, WIDTH, 10, NOW, skip_last=OPEN_BUCKETS)
    with pytest.raises(ValueError, match="settled"):
        Distinct("fresh", "a", settled_target.keys[-1], settled_target, 10, 60)


def test_a_plan_passes_the_memos_first_and_the_settled_keys_only_when_asked():
    window = sliding_window(STEM, WIDTH, 10, NOW)
    plan = CountPlan(sums=(Sum("sends", window),))
    light, _ = wire.encode(plan)
    full, _ = wire.encode(plan, settled=True)
    assert light == [window.memo, *window.open]
    assert full == [window.memo, *window.keys]
    assert len(light) == 1 + OPEN_BUCKETS


# --- the same answers on every store --------------------------------------------------------


def fill(store: counters.CounterStore, counts: dict[int, int]) -> None:
    """``counts[i]`` sends in the bucket ``i`` buckets before the current one."""
    for back, n in counts.items():
        for _ in range(n):
            store.bump(f"{STEM}:{CURRENT - back}", 3600)


def sums(window: Buckets) -> CountPlan:
    return CountPlan(sums=(Sum("memo", window), Sum("plain", window.keys)))


def test_a_sum_over_buckets_adds_up_what_its_keys_add_up_to(store):
    fill(store, {0: 1, 1: 2, 2: 3, 5: 4, 9: 5, 10: 100})  # 10: outside the window
    window = sliding_window(STEM, WIDTH, 10, NOW)
    assert store.count(sums(window)).sums == {"memo": 15, "plain": 15}
    fill(store, {0: 2, 1: 1})  # the open buckets move; the memo stays right
    assert store.count(sums(window)).sums == {"memo": 18, "plain": 18}
    settled_only = sliding_window(STEM, WIDTH, 10, NOW, skip_last=OPEN_BUCKETS)
    assert settled_only.open == ()
    assert store.count(sums(settled_only)).sums == {"memo": 12, "plain": 12}


def fresh(member: str, window: Buckets, name: str = "fresh") -> Distinct:
    return Distinct(name, member, window.keys[-1], window, 10**9, 3600)


def test_a_distinct_count_over_buckets_sees_the_members_of_its_settled_sets(store):
    # Members added while their buckets were the current one, minutes ago.
    for back, member in ((9, "a"), (4, "b"), (3, "c"), (1, "d")):
        then = sliding_window(STEM, WIDTH, 10, NOW - back * WIDTH)
        store.count(CountPlan(distinct=(fresh(member, then),)))
    window = sliding_window(STEM, WIDTH, 10, NOW)
    assert window.memo is not None
    seen = [store.count(CountPlan(distinct=(fresh(m, window),))).distinct["fresh"] for m in "abde"]
    assert seen == [4, 4, 4, 5]  # a, b (settled), d (open) are known; e is new and now kept
    assert store.count(CountPlan(distinct=(fresh("e", window),))).distinct["fresh"] == 5
    # The same answers as the plain sets give.
    plain = Distinct("plain", "a", window.keys[-1], window.keys, 10**9, 3600)
    result = store.count(CountPlan(distinct=(fresh("f", window), plain)))
    assert result.distinct == {"fresh": 6, "plain": 6}


def test_an_empty_settled_union_is_remembered_as_empty(store):
    window = sliding_window(STEM, WIDTH, 10, NOW)
    assert store.count(CountPlan(distinct=(fresh("a", window),))).distinct["fresh"] == 1
    assert store.count(CountPlan(distinct=(fresh("b", window),))).distinct["fresh"] == 2


# --- Redis: the round trips -----------------------------------------------------------------


#: The Redis-only tests need redis-server, as the store fixture's Redis cases do.
integration = pytest.mark.integration


@integration
def test_a_missing_memo_costs_one_more_round_trip_and_counts_nothing_twice(redis, calls):
    limited = LimitGroup("sms", "v", RECIPIENT, rates_for("sms", "v", ["5/h"]))
    window = sliding_window(STEM, WIDTH, 10, NOW)
    plan = CountPlan((limited,), sums=(Sum("sends", window),))
    assert redis.count(plan).counts["sms"] == (1,)
    assert calls == [1 + 1 + OPEN_BUCKETS, 1 + 1 + 10]  # refused for want of the memo, then all
    assert redis.count(plan).counts["sms"] == (2,)  # counted once per count, not per round trip
    assert calls[2:] == [1 + 1 + OPEN_BUCKETS]
    redis.delete_many([window.memo])  # evicted, or Redis restarted: computed again
    assert redis.count(plan).sums == {"sends": 0}
    assert len(calls) == 5


@integration
def test_the_memo_stands_for_the_settled_buckets_while_the_window_stays(redis):
    fill(redis, {5: 2})
    window = sliding_window(STEM, WIDTH, 10, NOW)
    assert redis.count(sums(window)).sums == {"memo": 2, "plain": 2}
    fill(redis, {5: 1})  # no send bumps a settled bucket; were one to, the memo would not see it
    assert redis.count(sums(window)).sums == {"memo": 2, "plain": 3}
    moved = sliding_window(STEM, WIDTH, 10, NOW + WIDTH)  # the next minute names a new memo
    assert redis.count(sums(moved)).sums["memo"] == 3


@integration
def test_a_site_wide_send_passes_a_few_keys_not_every_bucket(redis, calls):
    """The site-wide view's plan: ~190 keys before the memos; after them, the open buckets."""
    site = sitewide.watch("8613912", "ciam_otp:test:known", now=NOW)
    plan = CountPlan(bumps=site.bumps, sums=site.sums, distinct=site.distinct, budgets=site.budgets)
    first = redis.count(plan)
    second = redis.count(plan)
    assert calls[0] < 60 and calls[1] > 150 and calls[2] == calls[0]
    assert second.sums[sitewide.SHORT_ALL_SENDS] == first.sums[sitewide.SHORT_ALL_SENDS] + 1
    assert second.sums[sitewide.LONG_SENDS] == 2
    assert (
        first.distinct
        == second.distinct
        == {
            sitewide.SHORT_FRESH: 1,
            sitewide.LONG_FRESH: 1,
        }
    )


def test_an_empty_member_is_counted_like_any_other(store):
    # PREFIX_LENGTH 0 makes every prefix "": the memo's own marker member must not hide it.
    window = sliding_window(STEM, WIDTH, 10, NOW)
    assert store.count(CountPlan(distinct=(fresh("", window),))).distinct["fresh"] == 1
    assert store.count(CountPlan(distinct=(fresh("", window),))).distinct["fresh"] == 1
    assert store.count(CountPlan(distinct=(fresh("b", window),))).distinct["fresh"] == 2
