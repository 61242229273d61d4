"""Review attacks on the settled-bucket memos (count.lua, wire.py, rates.sliding_window).

The Redis store is held to a local-memory ``CacheStore`` fed the same plans
(the cache store reads every key, so it is the plain keys' answer), and to
the properties the change claims: nothing counted twice, memos in wire order,
memos that expire, one memo shared by two sums.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache

from django_ciam_otp import counters, sitewide
from django_ciam_otp.counters import (
    BUDGET_NOT_APPLIED,
    BUDGET_TAKEN,
    RECIPIENT,
    Buckets,
    Budget,
    Bump,
    CountPlan,
    Distinct,
    LimitGroup,
    Sum,
    rates_for,
    sliding_window,
    wire,
)
from django_ciam_otp.counters import redis as redis_store
from django_ciam_otp.counters.rates import OPEN_BUCKETS

STEM = "ciam_otp:test:r"
SETS = "ciam_otp:test:rf"
WIDTH = 60
NOW = 1_746_086_400.0 + 0.5
CURRENT = int(NOW // WIDTH)

integration = pytest.mark.integration


@pytest.fixture
def plain() -> counters.CacheStore:
    """The plain keys' answer: a store that keeps no memo."""
    cache = LocMemCache("review-plain", {})
    cache.clear()
    return counters.CacheStore(cache)


def raw(store: counters.RedisStore) -> Any:
    return store.access.client


def full(store: counters.RedisStore, key: str) -> str:
    return store.access.make_key(key)


def mixed_plan(now: float, member: str, *, known: bool = True) -> CountPlan:
    """Several memos: two sums sharing one, a plain sum, distinct counts (one with ``unless``),
    a bump, a limit group and budgets after the distinct counts."""
    window = sliding_window(STEM, WIDTH, 10, now)
    settled1 = sliding_window(STEM, WIDTH, 10, now, skip_last=1)  # same memo as ``window``
    settled2 = sliding_window(STEM, WIDTH, 10, now, skip_last=2)  # same memo, no open key
    settled3 = sliding_window(STEM, WIDTH, 10, now, skip_last=3)  # its own memo
    assert window.memo == settled1.memo == settled2.memo != settled3.memo
    sets = sliding_window(SETS, WIDTH, 10, now)
    long_sets = sliding_window(SETS + "L", WIDTH, 5, now)
    return CountPlan(
        groups=(LimitGroup("sms", "v", RECIPIENT, rates_for("sms", "v", ["1000/d"])),),
        bumps=(
            Bump(window.keys[-1], 3600, kept=True),
            Bump(STEM + ":u:" + str(int(now // WIDTH)), 3600, unless="ciam_otp:test:known"),
        ),
        sums=(
            Sum("all", window),
            Sum("plain", ("ciam_otp:test:mode",)),
            Sum("skip1", settled1),
            Sum("skip2", settled2),
            Sum("skip3", settled3),
            Sum("all again", window.keys),
        ),
        distinct=(
            Distinct("fresh", member, sets.keys[-1], sets, 10**9, 3600, "ciam_otp:test:known"),
            Distinct("capped", member, long_sets.keys[-1], long_sets, 4, 3600),
            Distinct("fresh plain", member, sets.keys[-1], sets.keys, 10**9, 3600),
        ),
        budgets=(
            Budget("when", "ciam_otp:test:b1", 1000, 0.0, 3600, when="ciam_otp:test:mode"),
            Budget("unless", "ciam_otp:test:b2", 1000, 0.0, 3600, unless="ciam_otp:test:known"),
        ),
    )


def toggle(stores: list[Any], key: str, on: bool) -> None:
    for store in stores:
        if on:
            store.cache.set(key, 1, 3600)
        else:
            store.cache.delete(key)


# --- Redis against the plain keys ----------------------------------------------------------


@integration
def test_redis_answers_as_the_plain_keys_over_a_random_walk_of_mixed_plans(redis, plain, calls):
    """A minute at a time, with memos missing, present, evicted; every answer the plain keys'."""
    rng = random.Random(15)
    stores = [redis, plain]
    missed = 0
    for step in range(40):
        now = NOW + step * WIDTH // 3
        toggle(stores, "ciam_otp:test:mode", bool(step % 4))
        known = rng.random() < 0.3
        toggle(stores, "ciam_otp:test:known", known)
        member = f"m{rng.randrange(8)}"
        plan = mixed_plan(now, member)
        memos = [w.memo for w, _ in wire._memos(plan) if w.memo is not None]
        assert len(memos) == 6  # 3 sums share one, 1 its own, 2 distinct; plain ones none
        if rng.random() < 0.3:  # one of them evicted (any: a sum's or a distinct count's)
            raw(redis).delete(full(redis, rng.choice(memos)))
        before = len(calls)
        got, want = redis.count(plan), plain.count(plan)
        missed += len(calls) - before - 1
        assert got == want, f"step {step}"
    assert missed > 5  # the walk did make second round trips


@integration
def test_the_site_wide_view_answers_as_the_plain_keys_across_minutes_and_hours(redis, plain):
    rng = random.Random(7)
    start = 1_746_086_400.0 - 30  # half a minute before an hour's edge
    for step in range(60):
        now = start + step * 37 + (3600 if step > 40 else 0)
        prefix = f"86139{rng.randrange(5)}"
        known = f"ciam_otp:test:known:{prefix}"
        if rng.random() < 0.2:
            for store in (redis, plain):
                store.cache.set(known, 1, 3600)
        site = sitewide.watch(prefix, known, now=now)
        plan = CountPlan(bumps=site.bumps, sums=site.sums, distinct=site.distinct)
        if rng.random() < 0.3:
            for store in (redis, plain):
                store.bump(sitewide._short("v", now).keys[-1], 660)
        assert redis.count(plan) == plain.count(plan), f"step {step}"


# --- nothing twice -------------------------------------------------------------------------


@integration
def test_a_second_round_trip_takes_one_budget_token_and_bumps_once(redis, calls):
    window = sliding_window(STEM, WIDTH, 10, NOW)
    plan = CountPlan(
        bumps=(Bump(window.keys[-1], 3600),),
        sums=(Sum("all", window),),
        budgets=(Budget("b", "ciam_otp:test:b", 3, 0.0, 3600),),
    )
    assert redis.count(plan).budgets == {"b": BUDGET_TAKEN}
    # Two round trips: the memo and the open buckets, then with the settled keys as well.
    assert calls == [1 + OPEN_BUCKETS + 2, 1 + 10 + 2]
    assert redis.budget_left("ciam_otp:test:b", 3, 0.0) == 2
    assert redis.get_many([window.keys[-1]]) == {window.keys[-1]: 1}


@integration
def test_a_refused_send_with_a_missing_memo_counts_nothing_twice_and_makes_the_memo(redis, calls):
    window = sliding_window(STEM, WIDTH, 10, NOW)
    limited = LimitGroup("sms", "v", RECIPIENT, rates_for("sms", "v", ["1/h"]))
    plan = CountPlan((limited,), bumps=(Bump(window.keys[-1], 3600),), sums=(Sum("s", window),))
    assert redis.count(plan).refused is None
    raw(redis).delete(full(redis, window.memo))
    for _ in range(3):
        result = redis.count(plan)
        assert result.refused == "sms" and result.counts["sms"] == (1,)
    # The memos are made before the limits are looked at: the first refused send pays a
    # second round trip and makes the memo, the next ones one round trip each (refused
    # traffic, an attack's, never pays double for long).
    assert len(calls) == 2 + 2 + 1 + 1
    assert raw(redis).exists(full(redis, window.memo))
    assert redis.get_many([window.keys[-1]]) == {window.keys[-1]: 1}


def between_the_round_trips(
    monkeypatch: pytest.MonkeyPatch, redis: counters.RedisStore, other: CountPlan
) -> list[Any]:
    """Count ``other`` (another send) right after the first answer that asked for the settled
    keys, before the second round trip; the list holds its result once it ran."""
    original = redis_store.run_script
    done: list[Any] = []

    def meanwhile(access: Any, name: str, keys: Any, args: Any) -> Any:
        answer = original(access, name, keys, args)
        if name == "count" and list(answer) == [-1] and not done:
            done.append(None)  # first: the other send's own round trips come through here
            done[0] = redis_store.RedisStore.count(redis, other)
        return answer

    monkeypatch.setattr(redis_store, "run_script", meanwhile)
    return done


@integration
def test_a_memo_computed_by_another_send_between_the_round_trips_is_used(redis, monkeypatch):
    fill = sliding_window(STEM, WIDTH, 10, NOW - 5 * WIDTH)
    for _ in range(3):
        redis.bump(fill.keys[-1], 3600)
    window = sliding_window(STEM, WIDTH, 10, NOW)
    limited = LimitGroup("sms", "v", RECIPIENT, rates_for("sms", "v", ["100/h"]))
    plan = CountPlan((limited,), bumps=(Bump(window.keys[-1], 3600),), sums=(Sum("s", window),))
    raced = between_the_round_trips(monkeypatch, redis, plan)  # another send, meanwhile
    result = redis.count(plan)
    assert raced[0].counts["sms"] == (1,) and raced[0].sums == {"s": 4}
    assert result.counts["sms"] == (2,) and result.sums == {"s": 5}


# --- memos ---------------------------------------------------------------------------------


@integration
def test_memos_live_two_buckets_and_hold_the_sentinel_only_once(redis):
    window = sliding_window(STEM, WIDTH, 10, NOW)
    sets = sliding_window(SETS, WIDTH, 10, NOW)
    raw(redis).sadd(full(redis, sets.keys[0]), "a", "b")
    raw(redis).sadd(full(redis, sets.keys[3]), "c")
    plan = CountPlan(
        sums=(Sum("s", window),), distinct=(Distinct("d", "z", sets.keys[-1], sets, 10**9, 60),)
    )
    assert redis.count(plan).distinct == {"d": 4}
    for memo in (window.memo, sets.memo):
        assert 0 < raw(redis).ttl(full(redis, memo)) <= 2 * WIDTH
    assert raw(redis).smembers(full(redis, sets.memo)) == {b"\x00", b"a", b"b", b"c"}
    assert raw(redis).get(full(redis, window.memo)) == b"0"


@integration
def test_a_sum_memo_of_settled_keys_holding_other_values_reads_as_the_plain_keys(redis, plain):
    window = sliding_window(STEM, WIDTH, 10, NOW)
    for store in (redis, plain):
        store.cache.set(window.keys[0], 7, 3600)
        store.cache.set(window.keys[1], 12345678901, 3600)
        store.cache.set(window.keys[2], 0, 3600)
    plan = CountPlan(sums=(Sum("s", window),))
    assert redis.count(plan) == plain.count(plan) == redis.count(plan)


def test_a_distinct_count_cannot_add_to_a_settled_set():
    """A window with ``skip_last`` ends in a settled bucket: its last key, the natural target,
    is then one of the sets the memo stands for, and what went into it would never be seen.
    Such a plan is refused when it is made."""
    window = sliding_window(SETS, WIDTH, 10, NOW, skip_last=2)
    assert window.memo is not None and window.open == ()
    with pytest.raises(ValueError, match="settled"):
        Distinct("d", "a", window.keys[-1], window, 10**9, 3600)
    # Without a memo every set is read, so any of them may take the member.
    Distinct("d", "a", window.keys[-1], window.keys, 10**9, 3600)


def test_a_member_in_two_sets_counts_once_in_a_memo_and_per_set_outside_one(store):
    """Two servers a bucket apart can both add a member (``Distinct``'s docstring): a memo
    holds the union and counts it once; outside a memo Redis adds up the sets' sizes and
    counts it per set, where the cache store, which always forms the union, counts it once.
    """
    window = sliding_window(SETS, WIDTH, 10, NOW)
    if isinstance(store, counters.RedisStore):
        raw(store).sadd(full(store, window.keys[0]), "x")
        raw(store).sadd(full(store, window.keys[4]), "x", "y")
    else:
        store.cache.set(window.keys[0], {"x"}, 3600)
        store.cache.set(window.keys[4], {"x", "y"}, 3600)
    memo = Distinct("memo", "a", window.keys[-1], window, 10**9, 3600)
    keys = Distinct("keys", "b", window.keys[-1], window.keys, 10**9, 3600)
    result = store.count(CountPlan(distinct=(memo, keys)))
    assert result.distinct["memo"] == 3  # x, y, a
    twice = 1 if isinstance(store, counters.RedisStore) else 0
    assert result.distinct["keys"] == result.distinct["memo"] + 1 + twice  # and b


@integration
def test_a_memo_missing_for_one_of_several_windows_leaves_the_others_as_they_were(redis, calls):
    a = sliding_window(STEM, WIDTH, 10, NOW)
    b = sliding_window(STEM + "b", WIDTH, 10, NOW)
    redis.bump(a.keys[0], 3600)
    redis.bump(b.keys[0], 3600)
    plan = CountPlan(sums=(Sum("a", a), Sum("b", b)))
    assert redis.count(plan).sums == {"a": 1, "b": 1}
    raw(redis).delete(full(redis, b.memo))
    redis.bump(a.keys[1], 3600)  # (no send would: the memo of ``a`` keeps standing)
    redis.bump(b.keys[1], 3600)
    assert redis.count(plan).sums == {"a": 1, "b": 2}
    assert len(calls) == 4


@integration
def test_the_unless_key_of_a_distinct_count_with_a_memo_keeps_its_member_out(redis, plain):
    sets = sliding_window(SETS, WIDTH, 10, NOW)
    for store in (redis, plain):
        store.cache.set("ciam_otp:test:known", 1, 3600)
    known = Distinct("d", "a", sets.keys[-1], sets, 10**9, 3600, "ciam_otp:test:known")
    after = Budget("b", "ciam_otp:test:b", 5, 0.0, 3600, unless="ciam_otp:test:known")
    plan = CountPlan(distinct=(known,), budgets=(after,))
    for _ in range(2):
        assert redis.count(plan) == plain.count(plan)
    assert redis.count(plan).budgets == {"b": BUDGET_NOT_APPLIED}
    assert not raw(redis).exists(full(redis, sets.keys[-1]))


def test_buckets_without_a_memo_read_every_key_on_every_store(store):
    window = Buckets(tuple(f"{STEM}:{i}" for i in range(5)))
    for i in range(5):
        store.bump(window.keys[i], 3600)
    assert store.count(CountPlan(sums=(Sum("s", window),))).sums == {"s": 5}


@integration
def test_servers_a_bucket_apart_sum_as_the_plain_keys(redis, plain):
    """One server's clock up to a bucket behind another's: it bumps the bucket before the
    current one, which is still open for every memo."""
    rng = random.Random(3)
    for step in range(80):
        real = NOW + step * 11
        now = real - rng.uniform(0, WIDTH - 1) if rng.random() < 0.5 else real
        site = sitewide.watch(f"86139{rng.randrange(3)}", "ciam_otp:test:known", now=now)
        plan = CountPlan(bumps=site.bumps, sums=site.sums)
        assert redis.count(plan).sums == plain.count(plan).sums, f"step {step}"


@integration
def test_two_distinct_counts_sharing_a_memo_answer_as_the_plain_sets(redis, plain):
    sets = sliding_window(SETS, WIDTH, 10, NOW)
    for back, member in ((8, "a"), (5, "b"), (1, "c")):
        then = sliding_window(SETS, WIDTH, 10, NOW - back * WIDTH)
        for store in (redis, plain):
            store.count(CountPlan(distinct=(Distinct("d", member, then.keys[-1], then, 99, 600),)))
    plan = CountPlan(
        distinct=(
            Distinct("one", "z", sets.keys[-1], sets, 99, 600),
            Distinct("two", "y", sets.keys[-1], sets, 99, 600),
            Distinct("three", "z", sets.keys[-1], sets, 5, 600),
            Distinct("capped", "x", sets.keys[-1], sets, 5, 600),
        )
    )
    first = redis.count(plan)
    assert first == plain.count(plan)
    assert first.distinct == {"one": 4, "two": 5, "three": 5, "capped": 6}
    assert redis.count(plan) == plain.count(plan)


@integration
def test_a_window_moving_on_between_the_round_trips_answers_for_the_plans_window(
    redis, plain, monkeypatch
):
    end = (CURRENT + 1) * WIDTH - 0.25  # the bucket's last moment
    for back in (9, 4, 2, 1, 0):
        for store in (redis, plain):
            store.bump(f"{STEM}:{CURRENT - back}", 3600)
    window = sliding_window(STEM, WIDTH, 10, end)
    plan = CountPlan(bumps=(Bump(window.keys[-1], 3600, kept=True),), sums=(Sum("s", window),))
    later = sliding_window(STEM, WIDTH, 10, end + 1)  # another server, already in the next minute
    other = CountPlan(bumps=(Bump(later.keys[-1], 3600, kept=True),), sums=(Sum("s", later),))
    done = between_the_round_trips(monkeypatch, redis, other)
    plain.count(other)
    assert redis.count(plan) == plain.count(plan)
    assert done[0].sums == {"s": 5}  # 9 minutes back is out of its window; its own send is in
    assert redis.count(other).sums == plain.count(other).sums


@integration
def test_random_plans_of_many_windows_answer_as_the_plain_keys(redis, plain):
    """Sums over windows of one stem (counts 1-12, skip 0-4: memos shared, some without),
    distinct counts each on its own stem, with and without ``unless``; memos evicted."""
    rng = random.Random(2026)
    sum_windows = [(c, s) for c in (1, 3, 4, 7, 12) for s in (0, 1, 2, 4) if s < c]
    set_windows = [3, 4, 9]
    for step in range(60):
        now = NOW + step * 17
        current = int(now // WIDTH)
        for _ in range(rng.randrange(3)):  # sends in the open buckets only
            key = f"{STEM}:{current - rng.randrange(2)}"
            for store in (redis, plain):
                store.bump(key, 3600)
        toggle([redis, plain], "ciam_otp:test:known", rng.random() < 0.3)
        sums = []
        for i in range(rng.randrange(1, 6)):
            count, skip = rng.choice(sum_windows)
            window = sliding_window(STEM, WIDTH, count, now, skip_last=skip)
            sums.append(Sum(f"s{i}", window if rng.random() < 0.8 else window.keys))
        distinct = []
        for i, count in enumerate(rng.sample(set_windows, rng.randrange(len(set_windows) + 1))):
            window = sliding_window(f"{SETS}:{count}", WIDTH, count, now)
            unless = "ciam_otp:test:known" if rng.random() < 0.5 else None
            member = f"p{rng.randrange(6)}"
            distinct.append(
                Distinct(f"d{i}", member, window.keys[-1], window, rng.randrange(2, 6), 900, unless)
            )
        budgets = (Budget("b", "ciam_otp:test:b", 10**6, 0.0, 60, unless="ciam_otp:test:known"),)
        plan = CountPlan(sums=tuple(sums), distinct=tuple(distinct), budgets=budgets)
        memos = [w.memo for w, _ in wire._memos(plan) if w.memo is not None]
        if memos and rng.random() < 0.3:
            raw(redis).delete(full(redis, rng.choice(memos)))
        assert redis.count(plan) == plain.count(plan), f"step {step}"


@pytest.mark.parametrize("settled", [1, 3, 5])
def test_hand_made_buckets_with_one_or_every_key_settled_sum_as_their_keys(store, settled):
    keys = tuple(f"{STEM}:{i}" for i in range(5))
    for i, key in enumerate(keys):
        for _ in range(i + 1):
            store.bump(key, 3600)
    window = Buckets(keys, settled, f"{STEM}:settled:hand-{settled}", 60)
    plan = CountPlan(sums=(Sum("memo", window), Sum("plain", keys)))
    for _ in range(2):  # the memo missing, then kept
        assert store.count(plan).sums == {"memo": 15, "plain": 15}
