"""Rates, windows and keys: this app's own (no private django-ratelimit helper behind them)."""

from __future__ import annotations

import datetime as dt
import zlib

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.counters import parse_rate, rates_for, wait_for
from django_ciam_otp.counters.rates import counter_key, window_end


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("5/h", (5, 3600)),
        ("1/30s", (1, 30)),
        ("3/3600s", (3, 3600)),
        ("10/m", (10, 60)),
        ("100/d", (100, 86400)),
        ("600/m", (600, 60)),
        ("2/5m", (2, 300)),
        ("7/", (7, 1)),
        ("7/10", (7, 10)),
    ],
)
def test_rates_are_read_as_django_ratelimit_writes_them(text, parsed):
    assert parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["", "5", "h/5", "5/0s", "5/x", "-1/h", "5/h/h"])
def test_anything_else_is_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured):
        parse_rate(text)


def test_windows_are_staggered_per_value_as_django_ratelimit_staggers_them():
    now = 1_746_086_400  # a multiple of 3600
    ends = {value: window_end(value, 3600, now) for value in ("a", "b", "c", "d")}
    assert len(set(ends.values())) == 4  # not all at the same second
    for value, end in ends.items():
        assert end == now + zlib.crc32(value.encode()) % 3600
        assert now <= end < now + 3600
    assert window_end("a", 1, now + 0.7) == now  # one-second windows: the current second


def test_a_window_that_ended_moves_on_by_one_period():
    end = window_end("a", 60, 1_000_000)
    assert window_end("a", 60, end) == end  # its last second still belongs to it
    assert window_end("a", 60, end + 1) == end + 60


def test_retry_after_is_the_whole_seconds_until_the_window_surely_ended():
    with time_machine.travel(dt.datetime.fromtimestamp(100.5, dt.UTC), tick=False):
        assert wait_for(130) == 31  # the window holds through second 130
        assert wait_for(100) == 1
        assert wait_for(90) == 1


def test_keys_name_the_group_rate_window_and_value():
    assert counter_key("ip", 60, 60, 1234, "abc") == "ciam_otp:rl:ip:60/60s:1234:abc"
    with time_machine.travel(dt.datetime.fromtimestamp(1_746_086_400, dt.UTC), tick=False):
        (hourly,) = rates_for("sms", "hash:login", ["5/h"])
    assert hourly.limit == 5 and hourly.ttl == 3605
    assert hourly.window == window_end("hash:login", 3600, 1_746_086_400)
    assert hourly.key == f"ciam_otp:rl:sms:5/3600s:{hourly.window}:hash:login"
