"""One suite, every store: a plan means the same on Redis (one Lua script) and on any cache.

Each test runs on the ``CacheStore`` (local memory) and on the ``RedisStore``
(a real ``redis-server``, both Redis cache backends): the rules of
``counters/plan.py`` exist once, and these tests hold both executions of them
to the same answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from django_ciam_otp import counters, ratelimits
from django_ciam_otp.counters import (
    CALLER,
    RECIPIENT,
    Bump,
    CountPlan,
    Distinct,
    LimitGroup,
    Marker,
    Sum,
    rates_for,
)
from django_ciam_otp.exceptions import SMSRateLimitExceeded

START = dt.datetime(2025, 5, 1, 8, 0, 0, 500000, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock() -> Any:
    """A fixed second: every plan of a test counts in the same windows."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def group(name: str, rates: list[str], phase: int = RECIPIENT, value: str = "v") -> LimitGroup:
    return LimitGroup(name, value, phase, rates_for(name, value, rates))


def value_of(store: counters.CounterStore, key: str) -> int:
    return int(store.get_many([key]).get(key) or 0)


def counted(store: counters.CounterStore, limit_group: LimitGroup) -> list[int]:
    return [value_of(store, rate.key) for rate in limit_group.rates]


# --- limit groups ---------------------------------------------------------------------------


def test_a_plan_counts_every_rate_and_reports_the_counts_after_it(store):
    recipient = group("sms", ["1/30s", "5/h"])
    first = store.count(CountPlan((recipient,)))
    assert first.refused is None
    assert first.counts == {"sms": (1, 1)}
    assert first.recipient_keys == tuple(r.key for r in recipient.rates)
    assert first.caller_keys == ()
    assert counted(store, recipient) == [1, 1]


def test_a_full_rate_refuses_and_reports_the_counts_as_found(store):
    recipient = group("sms", ["1/30s", "5/h"])
    store.count(CountPlan((recipient,)))
    refused = store.count(CountPlan((recipient,)))
    assert refused.refused == "sms"
    assert refused.counts == {"sms": (1, 1)}  # as found: the refusal counted nothing
    assert refused.recipient_keys == ()
    assert counted(store, recipient) == [1, 1]


def test_shortest_window_first_and_a_refusal_is_counted_in_no_longer_window(store):
    # Written longest first: rates_for puts the 30 s window first all the same.
    recipient = group("sms", ["5/h", "1/30s"])
    assert [r.ttl for r in recipient.rates] == [35, 3605]
    store.count(CountPlan((recipient,)))
    for _ in range(5):  # a burst of refusals
        assert store.count(CountPlan((recipient,))).refused == "sms"
    assert counted(store, recipient) == [1, 1]  # the hourly counter did not move


def test_a_longer_full_window_is_reported_when_a_shorter_one_refuses(store):
    recipient = group("sms", ["1/30s", "1/h"])
    store.count(CountPlan((recipient,)))
    assert store.count(CountPlan((recipient,))).counts == {"sms": (1, 1)}  # both full


def test_a_refused_phase_counts_nothing_and_stops_the_later_phases(store):
    recipient = group("sms", ["3/m"])
    prefix = group("prefix", ["1/m"], value="861361234")
    later = group("later", ["9/m"], phase=3)
    store.count(CountPlan((prefix,)))  # the prefix is full
    result = store.count(CountPlan((recipient, prefix, later)))
    assert result.refused == "prefix"
    assert result.counts["sms"] == (0,)  # as found: looked at, passed, but not counted
    assert counted(store, recipient) == [0]
    assert result.counts["later"] == (0,)  # never looked at
    assert counted(store, later) == [0]


def test_the_first_full_group_of_a_phase_refuses(store):
    first = group("first", ["1/m"], value="a")
    second = group("second", ["1/m"], value="b")
    store.count(CountPlan((first,)))
    store.count(CountPlan((second,)))
    assert store.count(CountPlan((first, second))).refused == "first"


def test_the_callers_hits_stay_counted_when_the_recipient_refuses(store):
    caller = group("client", ["9/m"], phase=CALLER, value="7")
    recipient = group("sms", ["1/30s"])
    assert store.count(CountPlan((caller, recipient))).refused is None
    refused = store.count(CountPlan((caller, recipient)))
    assert refused.refused == "sms"
    assert refused.caller_keys == (caller.rates[0].key,)
    assert refused.recipient_keys == ()
    assert counted(store, caller) == [2]


def test_a_refusing_caller_counts_nothing(store):
    caller = group("client", ["1/m"], phase=CALLER, value="7")
    recipient = group("sms", ["5/m"])
    store.count(CountPlan((caller,)))
    refused = store.count(CountPlan((caller, recipient), bumps=(Bump("ciam_otp:test:b", 60),)))
    assert refused.refused == "client"
    assert (refused.caller_keys, refused.recipient_keys) == ((), ())
    assert counted(store, caller) == [1]
    assert counted(store, recipient) == [0]
    assert value_of(store, "ciam_otp:test:b") == 0  # the bumps only when nothing refused


def test_a_forced_group_refuses_in_its_place(store):
    recipient = group("sms", ["1/30s"])
    blocked = LimitGroup("blocked", "861361234", RECIPIENT, forced=True)
    prefix = group("prefix", ["5/m"], value="861361234")
    result = store.count(CountPlan((recipient, blocked, prefix)))
    assert result.refused == "blocked"
    assert counted(store, recipient) == [0] and counted(store, prefix) == [0]
    store.count(CountPlan((recipient,)))
    assert store.count(CountPlan((recipient, blocked, prefix))).refused == "sms"  # comes first


# --- refunds --------------------------------------------------------------------------------


def test_a_refund_hands_back_one_count_of_each_key(store):
    recipient = group("sms", ["5/m", "9/h"])
    store.count(CountPlan((recipient,)))
    result = store.count(CountPlan((recipient,)))
    store.refund(result.recipient_keys)
    assert counted(store, recipient) == [1, 1]


def test_a_refund_never_revives_an_expired_counter(store):
    recipient = group("sms", ["5/m"])
    result = store.count(CountPlan((recipient,)))
    store.delete_many(result.recipient_keys)  # as if it had expired
    store.refund(result.recipient_keys)
    assert store.get_many(list(result.recipient_keys)) == {}  # absent, not -1


# --- what a send reads and marks ------------------------------------------------------------


def test_the_marker_tells_a_first_send_and_is_set_by_every_send(store):
    plan = CountPlan((group("sms", ["5/m"]),), marker=Marker("ciam_otp:sent:test", 360))
    assert store.count(plan).marker_was_set is False
    assert store.count(plan).marker_was_set is True
    assert store.count(CountPlan()).marker_was_set is True  # no marker: assume one


def test_no_marker_is_set_by_a_refused_count(store):
    blocked = LimitGroup("blocked", "x", RECIPIENT, forced=True)
    store.count(CountPlan((blocked,), marker=Marker("ciam_otp:sent:test", 360)))
    assert store.add("ciam_otp:sent:test", 1, 60) is True  # it was absent


def test_sums_are_read_after_the_bumps(store):
    store.bump("ciam_otp:test:s:1", 60)
    plan = CountPlan(
        bumps=(Bump("ciam_otp:test:s:2", 60), Bump("ciam_otp:test:v:2", 60)),
        sums=(
            Sum("sends", ("ciam_otp:test:s:1", "ciam_otp:test:s:2")),
            Sum("nothing", ("ciam_otp:test:none",)),
        ),
    )
    result = store.count(plan)
    assert result.sums == {"sends": 2, "nothing": 0}
    assert result.recipient_keys == ("ciam_otp:test:s:2", "ciam_otp:test:v:2")
    assert store.count(plan).sums == {"sends": 3, "nothing": 0}


def test_a_bump_is_skipped_while_its_unless_key_exists(store):
    # The "known" marker is written through the Django cache, as abuse.py does: the store
    # must look for it under the same cache key function as every other key of a plan.
    plan = CountPlan(
        bumps=(
            Bump("ciam_otp:test:s", 60),
            Bump("ciam_otp:test:u", 60, unless="ciam_otp:test:known"),
        )
    )
    assert store.count(plan).recipient_keys == ("ciam_otp:test:s", "ciam_otp:test:u")
    store.set("ciam_otp:test:known", 1, 60)
    skipped = store.count(plan)
    assert skipped.recipient_keys == ("ciam_otp:test:s",)  # a refund never takes back "u"
    assert [value_of(store, k) for k in ("ciam_otp:test:s", "ciam_otp:test:u")] == [2, 1]
    store.delete_many(["ciam_otp:test:known"])
    store.count(plan)
    assert value_of(store, "ciam_otp:test:u") == 2


def test_nothing_is_read_when_a_count_is_refused(store):
    blocked = LimitGroup("blocked", "x", RECIPIENT, forced=True)
    plan = CountPlan((blocked,), sums=(Sum("sends", ("k",)),))
    result = store.count(plan)
    assert (result.sums, result.distinct) == ({}, {})


def numbers(member: str, cap: int = 2) -> CountPlan:
    """This member among the numbers of two buckets, the newest one taking it."""
    union = ("ciam_otp:test:n:1", "ciam_otp:test:n:2")
    return CountPlan(distinct=(Distinct("prefix", member, union[-1], union, cap, 60),))


def test_distinct_members_are_counted_up_to_the_cap_and_a_refused_one_stays_out(store):
    assert [store.count(numbers(m)).distinct["prefix"] for m in ("a", "b", "a")] == [1, 2, 2]
    assert store.count(numbers("c")).distinct["prefix"] == 3  # over the cap of 2: refuse ...
    assert store.count(numbers("c")).distinct["prefix"] == 3  # ... and "c" was not kept
    assert store.count(numbers("a")).distinct["prefix"] == 2  # a known member is no new one


def test_distinct_counts_are_by_name(store):
    union = ("ciam_otp:test:r:1",)
    plan = CountPlan(
        distinct=(
            numbers("a").distinct[0],
            Distinct("range", "a", union[0], union, 5, 60),
        )
    )
    assert store.count(plan).distinct == {"prefix": 1, "range": 1}


# --- keys and plain operations --------------------------------------------------------------


def test_the_counters_are_in_the_documented_keys(store):
    recipient = group("sms", ["5/h"], value="hash:login")
    store.count(CountPlan((recipient,)))
    (rate,) = recipient.rates
    assert rate.key == f"ciam_otp:rl:sms:5/3600s:{rate.window}:hash:login"
    assert value_of(store, rate.key) == 1  # the Django cache reads what the store counted


def test_plain_operations(store):
    assert store.add("ciam_otp:test:a", 1, 60) is True
    assert store.add("ciam_otp:test:a", 2, 60) is False
    store.bump("ciam_otp:test:b", 60)
    store.bump("ciam_otp:test:b", 60)
    store.set("ciam_otp:test:c", 5, None)
    assert store.get_many(["ciam_otp:test:a", "ciam_otp:test:b", "ciam_otp:test:c"]) == {
        "ciam_otp:test:a": 1,
        "ciam_otp:test:b": 2,
        "ciam_otp:test:c": 5,
    }
    store.delete_many(["ciam_otp:test:a", "ciam_otp:test:b"])
    assert store.get_many(["ciam_otp:test:a", "ciam_otp:test:b"]) == {}
    assert store.touch("ciam_otp:test:c", 60) is True
    assert store.touch("ciam_otp:test:a", 60) is False


def test_add_keeps_any_value_and_its_lifetime(store):
    # RedisStore sets an integer on the client itself and anything else through the cache:
    # both must read back as the cache wrote them, and both must expire.
    assert store.add("ciam_otp:test:flag", 1, 2) is True
    assert store.add("ciam_otp:test:record", {"sent": [1, 2]}, 60) is True
    assert store.add("ciam_otp:test:forever", 7, None) is True
    assert store.get_many(["ciam_otp:test:flag", "ciam_otp:test:record"]) == {
        "ciam_otp:test:flag": 1,
        "ciam_otp:test:record": {"sent": [1, 2]},
    }
    if isinstance(store, counters.RedisStore):
        ttl = store.access.client.ttl
        assert 0 < ttl(store.access.make_key("ciam_otp:test:flag")) <= 2
        assert ttl(store.access.make_key("ciam_otp:test:forever")) == -1  # no expiry


def test_a_plan_must_be_in_phase_order_with_unique_names():
    with pytest.raises(ValueError, match="phase order"):
        CountPlan((group("sms", []), group("client", [], phase=CALLER)))
    with pytest.raises(ValueError, match="unique"):
        CountPlan((group("sms", []),), sums=(Sum("sms", ()),))


# --- what the rules make of it --------------------------------------------------------------


def test_retry_after_for_a_full_window_is_waited_out_to_the_second(store, settings, clock):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": ["1/30s", "5/h"]}

    def send() -> ratelimits.SendCharge:
        limits = ratelimits.send_limits(
            None, client_pk=1, channel="sms", recipient_hash="h" * 64, usage="login"
        )
        return ratelimits.count_send(limits, CountPlan(limits.groups))

    wait = send().retry_after
    assert 1 <= wait <= 31  # 1/30s is full until its window surely ended
    clock.shift(dt.timedelta(seconds=wait - 1))
    with pytest.raises(SMSRateLimitExceeded) as refused:
        send()
    assert refused.value.retry_after == 1  # the window's last second
    clock.shift(dt.timedelta(seconds=1))
    assert send().retry_after >= 1


def test_a_kept_bump_is_never_handed_back(store):
    """Attempts (``Bump.kept``): counted when nothing refused, and a refund leaves them."""
    from django_ciam_otp.counters import Bump, CountPlan

    plan = CountPlan(bumps=(Bump("t:attempts", 60, kept=True), Bump("t:sends", 60)))
    result = store.count(plan)
    assert result.recipient_keys == ("t:sends",)
    store.refund(result.recipient_keys)
    values = store.get_many(["t:attempts", "t:sends"])
    assert int(values["t:attempts"]) == 1
    assert int(values.get("t:sends") or 0) == 0


def test_a_distinct_count_with_its_unless_key_present_counts_nothing_new(store):
    """``Distinct.unless``: a proven prefix is neither added nor counted among the unproven."""
    from django_ciam_otp.counters import CountPlan, Distinct

    def count(member: str) -> int:
        plan = CountPlan(
            distinct=(Distinct("fresh", member, "t:set", ("t:set",), 10**9, 60, unless="t:known"),)
        )
        return store.count(plan).distinct["fresh"]

    assert count("a") == 1
    assert count("b") == 2
    store.add("t:known", 1, 60)
    assert count("c") == 2  # not counted, not added
    store.delete_many(["t:known"])
    assert count("c") == 3
    assert count("a") == 3  # already in
