"""A plan's ``ttl_of``: the count reads a key's remaining lifetime in its own round trip.

The send reads the outbox's wake-up flag this way (``outbox.flag_lasts_until``).
Redis answers the key's ``PTTL`` (0 for a missing key); any other cache cannot
say and answers ``None``, which the send takes as "unknown" (it sets the flag
itself). Also the two operations a run of the batch task lets go of the flag
with (``hand_over``).
"""

from __future__ import annotations

import pytest

from django_ciam_otp import counters
from django_ciam_otp.counters import RECIPIENT, CountPlan, LimitGroup, Marker, rates_for

FLAG = "ciam_otp:test:flag"
integration = pytest.mark.integration  # a real redis-server (tests/counters/conftest.py)


def plan(ttl_of: str | None = FLAG) -> CountPlan:
    group = LimitGroup("sms", "v", RECIPIENT, rates_for("sms", "v", ["5/m"]))
    return CountPlan((group,), marker=Marker("ciam_otp:test:marker", 60), ttl_of=ttl_of)


@integration
def test_redis_reads_a_present_keys_lifetime_in_the_counts_round_trip(redis, calls):
    assert redis.add(FLAG, 1, 2)
    result = redis.count(plan())
    assert 1900 < result.ttl_left <= 2000  # milliseconds
    assert calls == [3]  # one round trip: the rate, the marker and the flag


@integration
def test_redis_answers_zero_for_a_missing_key_and_none_when_not_asked(redis):
    assert redis.count(plan()).ttl_left == 0
    assert redis.count(plan(ttl_of=None)).ttl_left is None


@integration
def test_a_refused_count_reads_no_lifetime(redis):
    assert redis.add(FLAG, 1, 2)
    group = LimitGroup("sms", "v", RECIPIENT, rates_for("sms", "v", ["0/m"]))
    result = redis.count(CountPlan((group,), ttl_of=FLAG))
    assert result.refused == "sms" and result.ttl_left is None


@pytest.mark.parametrize("store", ["cache"], indirect=True)
def test_another_cache_cannot_say(store):
    assert store.add(FLAG, 1, 2)
    assert store.count(plan()).ttl_left is None  # unknown: the send sets the flag itself


@integration
def test_redis_hands_a_flag_over_whether_it_exists_or_not(redis):
    client, key = redis.access.client, redis.access.make_key(FLAG)
    assert redis.hand_over(FLAG, "run:a", 50) is True  # a flag gone early is set again
    assert client.get(key) == b"run:a" and 40 < client.pttl(key) <= 50
    assert redis.add(FLAG, 1, 2) is False
    assert redis.hand_over(FLAG, "run:b", 50) is True  # a send's flag: ends within 50 ms
    assert client.get(key) == b"run:b"


@pytest.mark.parametrize("store", ["cache"], indirect=True)
def test_another_cache_deletes_the_flag_when_it_is_handed_over(store):
    """Its counts read no lifetime, so no send relies on its flag: nothing to wait for."""
    assert store.add(FLAG, 1, 2)
    assert store.hand_over(FLAG, "run:a", 50) is False
    assert store.add(FLAG, 1, 2)  # gone: the next send wakes a run


@integration
def test_the_guarded_function_answers_for_the_configured_store(redis):
    assert counters.store.hand_over(FLAG, "run:a", 50) is True
