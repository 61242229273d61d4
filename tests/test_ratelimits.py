"""The rate rules of a send (``ratelimits.py``) on the fast suite's local-memory cache.

What each store does with a plan is ``tests/counters``'s; the whole send on
Redis is ``tests/integration/test_redis_counters.py``'s. Here: which limits a
send declares and in which order, the answer each one refuses with, the
``retry_after`` it reports, refunds, clearing a recipient, and what happens
when the cache does not answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.test import RequestFactory

from django_ciam_otp import counters, ratelimits
from django_ciam_otp.counters import CALLER, RECIPIENT, CacheStore, CountPlan, Marker
from django_ciam_otp.exceptions import (
    EmailRateLimitExceeded,
    RateLimitExceeded,
    SMSRateLimitExceeded,
    TemporarilyUnavailable,
)

START = dt.datetime(2025, 5, 1, 8, 0, 0, 500000, tzinfo=dt.UTC)
HASH = "a" * 64
LIMITS = {
    "SMS_RATE_LIMITS": ["1/30s", "3/h"],
    "EMAIL_RATE_LIMITS": ["2/m"],
    "PREFIX_RATE_LIMITS": ["2/m"],
    "CLIENT_RATE_LIMITS": ["9/m"],
    "IP_RATE_LIMITS": ["7/m"],
}


@pytest.fixture(autouse=True)
def limits(settings: Any) -> Any:
    settings.CIAM_OTP = {**settings.CIAM_OTP, **LIMITS}
    with time_machine.travel(START, tick=False) as clock:
        yield clock


def request_from(ip: str = "203.0.113.7") -> Any:
    return RequestFactory().post("/otp/send", REMOTE_ADDR=ip)


def declare(**overrides: Any) -> ratelimits.SendLimits:
    arguments: dict[str, Any] = {
        "client_pk": 7,
        "channel": "sms",
        "recipient_hash": HASH,
        "usage": "login",
        "prefix": "861361234",
    }
    arguments.update(overrides)
    request = arguments.pop("request", request_from())
    return ratelimits.send_limits(request, **arguments)


def send(**overrides: Any) -> ratelimits.SendCharge:
    declared = declare(**overrides)
    return ratelimits.count_send(declared, CountPlan(declared.groups))


# --- what a send declares -------------------------------------------------------------------


def test_the_limits_of_a_send_in_the_contracts_order():
    declared = declare(blocked=RateLimitExceeded(retry_after=5))
    assert [(g.name, g.phase, len(g.rates)) for g in declared.groups] == [
        ("client", CALLER, 1),
        ("ip", CALLER, 1),
        ("sms", RECIPIENT, 2),
        ("blocked", RECIPIENT, 0),
        ("prefix", RECIPIENT, 1),
    ]
    assert declared.groups[3].forced
    assert declared.groups[2].value == HASH + ":login"
    assert [r.limit for r in declared.groups[2].rates] == [1, 3]  # shortest window first


def test_no_plain_ip_address_in_a_counter_key():
    (ip,) = [g for g in declare().groups if g.name == "ip"]
    assert "203.0.113.7" not in ip.value and len(ip.value) == 32
    assert ip.value != [g for g in declare(request=request_from("10.0.0.1")).groups][1].value
    assert ip.rates[0].key.startswith("ciam_otp:rl:ip:7/60s:")


def test_no_request_no_ip_limit_and_caller_only_stops_at_the_caller():
    assert "ip" not in [g.name for g in declare(request=None).groups]
    assert [g.name for g in declare(caller_only=True).groups] == ["client", "ip"]


def test_email_has_no_prefix_and_answers_for_its_channel():
    declared = declare(channel="email", prefix=None)
    assert [g.name for g in declared.groups] == ["client", "ip", "email"]
    for _ in range(2):
        send(channel="email", prefix=None)
    with pytest.raises(EmailRateLimitExceeded) as refused:
        send(channel="email", prefix=None)
    assert 1 <= refused.value.retry_after <= 60


def test_per_usage_unless_told_otherwise(settings):
    send(prefix=None)
    send(prefix=None, usage="signup")  # its own counter
    settings.CIAM_OTP = {**settings.CIAM_OTP, "RATE_LIMIT_PER_USAGE": False}
    assert declare().groups[2].value == HASH
    send(prefix=None)
    with pytest.raises(SMSRateLimitExceeded):
        send(prefix=None, usage="signup")


def test_ratelimit_enable_false_counts_nothing_but_a_block_still_refuses(settings):
    settings.RATELIMIT_ENABLE = False
    assert not any(g.rates for g in declare().groups)
    with mock.patch.object(counters.store, "get_store", side_effect=AssertionError("asked")):
        for _ in range(5):
            send()
        with pytest.raises(RateLimitExceeded) as refused:
            send(blocked=RateLimitExceeded(retry_after=42))
    assert refused.value.retry_after == 42


# --- the answers ----------------------------------------------------------------------------


def test_the_recipient_refuses_with_the_longest_full_window(limits):
    first = send()
    assert 1 <= first.retry_after <= 31  # 1/30s is full until its window ends
    with pytest.raises(SMSRateLimitExceeded) as refused:
        send()
    assert refused.value.retry_after <= 31
    for _ in range(2):
        limits.shift(dt.timedelta(seconds=31))
        send()
    with pytest.raises(SMSRateLimitExceeded) as refused:
        send()
    assert refused.value.retry_after > 31  # 3/h is full too: the longer wait


def test_a_full_window_is_waited_out_to_the_second(limits):
    wait = send().retry_after
    limits.shift(dt.timedelta(seconds=wait - 1))
    with pytest.raises(SMSRateLimitExceeded) as refused:
        send()
    assert refused.value.retry_after == 1  # the last second of the window
    limits.shift(dt.timedelta(seconds=1))
    send()


def test_the_prefix_refuses_after_the_recipient_with_its_own_words():
    send(recipient_hash="a" * 64)
    send(recipient_hash="b" * 64)
    with pytest.raises(RateLimitExceeded) as refused:
        send(recipient_hash="c" * 64)
    assert refused.value.as_dict()["error_description"] == (
        "Too many codes to numbers like this one. Try again later."
    )
    with pytest.raises(SMSRateLimitExceeded):  # the recipient's limit is looked at first
        send(recipient_hash="a" * 64)


def test_a_caller_over_its_limit_gets_429_and_keeps_its_hits():
    for n in range(7):
        send(recipient_hash=f"{n}" * 64, prefix=f"8613{n}")
    with pytest.raises(RateLimitExceeded) as refused:
        send(recipient_hash="x" * 64, prefix="86139")
    assert refused.value.as_dict()["error_description"] == "Too many requests. Please slow down."
    ip = declare().groups[1]
    assert counters.counter_cache().get(ip.rates[0].key) == 7


def test_a_refused_recipient_leaves_the_callers_hits_counted():
    send()
    with pytest.raises(SMSRateLimitExceeded):
        send()
    client = declare().groups[0]
    assert counters.counter_cache().get(client.rates[0].key) == 2


def test_count_caller_counts_the_client_and_the_ip_only():
    charge = ratelimits.count_caller(request_from(), client_pk=7)
    assert len(charge.keys) == 2
    assert all(key.startswith(("ciam_otp:rl:client:", "ciam_otp:rl:ip:")) for key in charge.keys)
    for _ in range(6):
        ratelimits.count_caller(request_from(), client_pk=7)
    with pytest.raises(RateLimitExceeded):
        ratelimits.count_caller(request_from(), client_pk=7)


def test_one_clients_share_of_a_persons_allowance(settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": ["4/h"],
        "RECIPIENT_SHARE_PER_CLIENT": 0.5,
    }
    assert ratelimits.client_share(["5/h", "1/30s"]) == ["1/30s", "3/3600s"]
    assert [g.name for g in declare(prefix=None).groups][-1] == "sms.client"
    send(prefix=None)
    send(prefix=None)
    with pytest.raises(SMSRateLimitExceeded):
        send(prefix=None)  # this client's two of four are used
    send(prefix=None, client_pk=8)  # another client still reaches the person


# --- refunds and clearing -------------------------------------------------------------------


def test_refunds_hand_back_what_a_send_counted():
    charge = send()
    assert len(charge.caller.keys) == 2 and len(charge.recipient.keys) == 3
    charge.refund_all()
    assert charge.caller.keys == charge.recipient.keys == []  # a second refund is a no-op
    charge.refund_all()
    assert send().recipient.keys  # not refused: the first send was handed back


def test_a_marker_and_bumps_ride_with_the_limits():
    declared = declare()
    plan = CountPlan(
        declared.groups,
        bumps=(counters.Bump("ciam_otp:test:bump", 60),),
        marker=Marker("ciam_otp:sent:test", 60),
    )
    first = ratelimits.count_send(declared, plan)
    assert first.marker_was_set is False
    assert "ciam_otp:test:bump" in first.recipient.keys
    first.recipient.refund()
    assert counters.counter_cache().get("ciam_otp:test:bump") == 0


def test_a_verified_code_clears_the_recipients_counters_once_a_day(limits):
    send()
    ratelimits.clear_recipient("sms", HASH, "login", 7)
    send()  # the 1/30s counter was cleared
    ratelimits.clear_recipient("sms", HASH, "login", 7)
    with pytest.raises(SMSRateLimitExceeded):
        send()  # not twice in a day
    limits.shift(dt.timedelta(days=1, seconds=1))
    send()


# --- a cache that does not answer -----------------------------------------------------------


def test_a_dead_cache_fails_closed_and_trips_the_breaker():
    with mock.patch.object(CacheStore, "count", side_effect=ConnectionError("down")) as count:
        with pytest.raises(TemporarilyUnavailable):
            send()
        assert counters.cache_is_down()
        with pytest.raises(TemporarilyUnavailable):
            send()
    assert count.call_count == 1


def test_a_dead_cache_fails_open_when_told_but_a_block_still_refuses(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "RATE_LIMIT_FAIL_OPEN": True}
    counters.trip_breaker()
    charge = send()
    assert charge.result is None and charge.marker_was_set is True
    assert charge.caller.keys == charge.recipient.keys == []
    with pytest.raises(RateLimitExceeded):
        send(blocked=RateLimitExceeded(retry_after=5))


def test_with_no_limit_to_count_a_dead_cache_is_no_refusal(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": [], "PREFIX_RATE_LIMITS": []}
    settings.CIAM_OTP = {**settings.CIAM_OTP, "CLIENT_RATE_LIMITS": [], "IP_RATE_LIMITS": []}
    counters.trip_breaker()
    declared = declare()
    plan = CountPlan(declared.groups, marker=Marker("ciam_otp:sent:test", 60))
    assert ratelimits.count_send(declared, plan).result is None


def test_a_refund_on_a_dead_cache_is_skipped_quietly():
    charge = send()
    counters.trip_breaker()
    charge.refund_all()  # no error: the counters expire anyway
    assert charge.recipient.keys == []
