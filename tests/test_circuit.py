"""A circuit per SMS backend (django_ciam_otp.circuit): skip a backend that keeps failing.

``FAILURES`` transient failures within ``WINDOW`` seconds open it for
``COOL_DOWN`` seconds; then it is half-open: one success closes it, one failure
opens it again at once. The record lives in the rate-limit cache, so every
process sees it (each reads it at most once per ``LOOKUP_CACHE_SECONDS``); a
cache that does not answer means closed, never an exception.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.core.cache.backends.locmem import LocMemCache

from django_ciam_otp import circuit, counters

START = dt.datetime(2025, 5, 1, 8, 0, tzinfo=dt.UTC)
FAILURES, WINDOW, COOL_DOWN = 3, 60, 30


@pytest.fixture(autouse=True)
def circuit_settings(settings: Any) -> None:
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_CIRCUIT": {"FAILURES": FAILURES, "WINDOW": WINDOW, "COOL_DOWN": COOL_DOWN},
    }


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def another_process() -> None:
    """What a process that has not read the circuit yet sees: drop this one's copy."""
    circuit.forget_local_copy()


def fail(name: str, times: int) -> list[bool]:
    return [circuit.record_failure(name) for _ in range(times)]


def shift(clock: time_machine.Coordinates, seconds: float) -> None:
    clock.shift(dt.timedelta(seconds=seconds))


# --- opening ----------------------------------------------------------------------------------


def test_failures_within_the_window_open_it_and_not_one_fewer(clock):
    assert circuit.state("tencent") == circuit.CLOSED
    assert fail("tencent", FAILURES - 1) == [False, False]
    assert circuit.state("tencent") == circuit.CLOSED
    another_process()
    assert circuit.state("tencent") == circuit.CLOSED

    shift(clock, WINDOW - 1)
    assert circuit.record_failure("tencent") is True  # the third within the window
    assert circuit.state("tencent") == circuit.OPEN
    another_process()
    assert circuit.state("tencent") == circuit.OPEN  # shared through the cache


def test_failures_further_apart_than_the_window_do_not_open_it(clock):
    fail("tencent", FAILURES - 1)
    shift(clock, WINDOW + 1)
    assert circuit.record_failure("tencent") is False  # a new window: one failure in it
    assert circuit.state("tencent") == circuit.CLOSED
    shift(clock, 1)
    assert fail("tencent", FAILURES - 1) == [False, True]
    assert circuit.state("tencent") == circuit.OPEN


def test_each_backend_has_its_own_circuit(clock):
    fail("tencent", FAILURES)
    assert circuit.state("tencent") == circuit.OPEN
    assert circuit.state("twilio") == circuit.CLOSED
    assert circuit.record_failure("twilio") is False


def test_the_circuit_stays_open_for_the_cool_down_then_is_half_open(clock):
    fail("tencent", FAILURES)
    shift(clock, COOL_DOWN - 1)
    assert circuit.state("tencent") == circuit.OPEN
    shift(clock, 1)
    assert circuit.state("tencent") == circuit.HALF_OPEN
    another_process()
    assert circuit.state("tencent") == circuit.HALF_OPEN  # every process may try it now


def test_a_circuit_nobody_tried_after_its_cool_down_closes_by_itself(clock):
    fail("tencent", FAILURES)
    shift(clock, COOL_DOWN + WINDOW)  # the record has expired
    another_process()
    assert circuit.state("tencent") == circuit.CLOSED
    assert circuit.record_failure("tencent") is False  # counted afresh, not a failed trial


# --- half-open: one try decides ------------------------------------------------------------------


def test_a_success_when_half_open_closes_it_and_forgets_the_failures(clock):
    fail("tencent", FAILURES)
    # Tried while open anyway (every backend of a route open): failures counted meanwhile.
    assert fail("tencent", FAILURES - 1) == [False, False]
    shift(clock, COOL_DOWN)
    assert circuit.state("tencent") == circuit.HALF_OPEN
    circuit.record_success("tencent")
    assert circuit.state("tencent") == circuit.CLOSED
    another_process()
    assert circuit.state("tencent") == circuit.CLOSED
    assert fail("tencent", FAILURES - 1) == [False, False]  # counting starts again
    assert circuit.state("tencent") == circuit.CLOSED


def test_a_failure_when_half_open_opens_it_again_at_once(clock):
    fail("tencent", FAILURES)
    shift(clock, COOL_DOWN)
    assert circuit.state("tencent") == circuit.HALF_OPEN
    assert circuit.record_failure("tencent") is True  # one failure, not FAILURES
    assert circuit.state("tencent") == circuit.OPEN
    another_process()
    assert circuit.state("tencent") == circuit.OPEN
    shift(clock, COOL_DOWN - 1)  # a whole new cool-down
    assert circuit.state("tencent") == circuit.OPEN
    shift(clock, 1)
    assert circuit.state("tencent") == circuit.HALF_OPEN


def test_a_half_open_circuit_seen_by_another_process_reopens_there_too(clock):
    fail("tencent", FAILURES)
    shift(clock, COOL_DOWN)
    another_process()  # a worker that never saw it open finds the trial record
    assert circuit.record_failure("tencent") is True
    assert circuit.state("tencent") == circuit.OPEN


def test_a_success_while_closed_writes_nothing(clock):
    """The hot path: every delivery succeeds on a closed circuit; no cache round trip."""
    assert circuit.state("tencent") == circuit.CLOSED
    with mock.patch.object(circuit, "counter_cache") as cache:
        circuit.record_success("tencent")
    cache.assert_not_called()


# --- each process's copy ----------------------------------------------------------------------


class Monotonic:
    """``time.monotonic`` for circuit.py (time-machine does not move it), ``time.time`` real."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.time = time.time

    def monotonic(self) -> float:
        return self.now


def test_each_process_reads_the_circuit_at_most_once_per_lookup_period(monkeypatch, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "LOOKUP_CACHE_SECONDS": 5}
    fake = Monotonic()
    monkeypatch.setattr(circuit, "time", fake)
    assert circuit.state("tencent") == circuit.CLOSED  # read now, at 1000.0

    # Another process opens it meanwhile (this one keeps what it read).
    mine = dict(circuit._seen)
    fail("tencent", FAILURES)
    circuit._seen.clear()
    circuit._seen.update(mine)

    fake.now += 4.9
    with mock.patch.object(circuit, "_read", wraps=circuit._read) as read:
        assert circuit.state("tencent") == circuit.CLOSED  # its copy, not the cache
        read.assert_not_called()
        fake.now += 0.1
        assert circuit.state("tencent") == circuit.OPEN
        assert read.call_count == 1


def test_with_no_lookup_period_every_look_reads_the_cache(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "LOOKUP_CACHE_SECONDS": 0}
    assert circuit.state("tencent") == circuit.CLOSED
    mine = dict(circuit._seen)
    fail("tencent", FAILURES)
    circuit._seen.clear()
    circuit._seen.update(mine)
    assert circuit.state("tencent") == circuit.OPEN


def test_forgetting_the_local_copy_reads_the_cache_again(clock):
    assert circuit.state("tencent") == circuit.CLOSED
    circuit.counter_cache().set("ciam_otp:circuit:tencent:open", time.time() + 10, 60)
    assert circuit.state("tencent") == circuit.CLOSED  # this process's copy
    circuit.forget_local_copy()
    assert circuit.state("tencent") == circuit.OPEN


# --- a cache that does not answer -------------------------------------------------------------


class DeadCache(LocMemCache):
    """A cache whose every call fails, as a Redis that went away."""

    failing = ("get", "set", "add", "incr", "delete", "delete_many", "get_many")

    def __getattribute__(self, name: str) -> Any:
        if name in type(self).failing:
            raise ConnectionError(f"cache down ({name})")
        return super().__getattribute__(name)


class ReadOnlyCache(DeadCache):
    """A cache that reads and counts but fails to write (it went away between two calls)."""

    failing = ("set", "delete", "delete_many")


@pytest.fixture
def use_cache(settings: Any) -> Any:
    def use(cls: type[LocMemCache]) -> None:
        settings.CACHES = {
            **settings.CACHES,
            "counters": {"BACKEND": f"{__name__}.{cls.__name__}", "LOCATION": cls.__name__},
        }
        settings.RATELIMIT_USE_CACHE = "counters"

    return use


def test_a_dead_cache_means_closed_and_nothing_raises(clock, use_cache):
    fail("tencent", FAILURES)
    use_cache(DeadCache)
    another_process()
    assert circuit.state("tencent") == circuit.CLOSED
    assert counters.cache_is_down()  # later calls of this process skip the cache
    counters.reset_breaker()
    assert fail("tencent", FAILURES + 1) == [False] * (FAILURES + 1)
    circuit.record_success("tencent")
    assert circuit.state("tencent") == circuit.CLOSED


def test_a_cache_known_down_is_not_asked(clock):
    fail("tencent", FAILURES)
    another_process()
    counters.trip_breaker()
    with mock.patch.object(circuit, "counter_cache") as cache:
        assert circuit.state("tencent") == circuit.CLOSED
        assert circuit.record_failure("tencent") is False
        circuit.record_success("tencent")
    cache.assert_not_called()


def test_a_cache_that_fails_to_record_the_opening_raises_nothing(clock, use_cache):
    use_cache(ReadOnlyCache)
    assert fail("tencent", FAILURES - 1) == [False, False]
    assert circuit.record_failure("tencent") is False  # could not be opened for anyone
    assert counters.cache_is_down()


def test_a_cache_that_fails_to_record_a_failed_trial_raises_nothing(clock, use_cache):
    use_cache(ReadOnlyCache)
    # Opened by another process before the cache went half away (same LOCATION, same store).
    LocMemCache("ReadOnlyCache", {}).set("ciam_otp:circuit:tencent:open", time.time(), 60)
    assert circuit.state("tencent") == circuit.HALF_OPEN
    assert circuit.record_failure("tencent") is False
    assert counters.cache_is_down()
