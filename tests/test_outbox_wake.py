"""The wake-up flag on Redis: a send skips its ``SET NX`` while the flag it read is certain to live.

The count reads the flag's lifetime (``CountPlan.ttl_of``) before the token
commits; after the commit, ``dispatch.wake`` skips the ``SET NX`` while
``sent_at + min(pttl, RELY_SECONDS) - margin`` has not passed. A run lets go
of the flag by setting it to a value of its own for ``RELY_SECONDS`` and
takes its last look no sooner (``outbox.let_go_of_wake``): a token a send
committed while relying on the flag is taken by that look. On any other cache
the count cannot read a lifetime, and every send sets the flag as before.
"""

# ruff: noqa: F811 - the fixtures imported below are parameters here

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from django_ciam_otp import counters, dispatch, flows, outbox, tasks
from django_ciam_otp.counters import CountPlan
from django_ciam_otp.models import DeliveryStatus, OTPToken
from tests.counters.conftest import redis, redis_server  # noqa: F401 - fixtures
from tests.integration.test_redis_counters import round_trips
from tests.test_outbox import (  # noqa: F401 - fixtures
    PHONES,
    answers,
    caller,
    e164,
    queued,
    row,
    sent_to,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def trips() -> Iterator[list[int]]:
    """redis-py's network writes (one per command, one per pipeline or script)."""
    with round_trips() as count:
        yield count


@pytest.fixture
def broker() -> Iterator[mock.Mock]:
    """The batch task's publish (nothing runs: the test drives the runs)."""
    with mock.patch.object(tasks.deliver_due, "apply_async") as publish:
        yield publish


def flag() -> tuple[str | None, int]:
    """The wake-up flag's value and the milliseconds it has left (0: missing)."""
    access = counters.get_store().access  # a RedisStore in these tests
    key = access.make_key(outbox.WAKE_KEY)
    value, left = access.client.get(key), access.client.pttl(key)
    return (None if value is None else value.decode()), max(0, left)


def seen_now() -> float:
    """What a send's count makes of the flag as it is now (``counting.wake_flag_until``)."""
    asked_at = time.monotonic()
    result = counters.store.count(CountPlan(ttl_of=outbox.WAKE_KEY))
    return outbox.flag_lasts_until(asked_at, result.ttl_left)


# --- the send's side -----------------------------------------------------------------------------


def test_the_reliance_is_bounded_by_the_flags_life_and_rely_seconds():
    assert outbox.flag_lasts_until(10.0, 2000) == pytest.approx(10.0 + 0.05 - 0.005)
    assert outbox.flag_lasts_until(10.0, 20) == pytest.approx(10.0 + 0.02 - 0.005)
    assert outbox.flag_lasts_until(10.0, 0) == outbox.flag_lasts_until(10.0, None) == 0.0


@pytest.mark.django_db(transaction=True)  # the wake-up runs at the send's own commit
def test_a_send_under_a_live_flag_makes_no_set_nx(
    redis, caller, broker, trips, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(outbox, "RELY_SECONDS", 1.0)  # a slow test machine still commits in time
    assert outbox.claim_wake()  # a pending run's flag (2 s)
    flows.send_otp(caller, usage="signup", phone_number=PHONES[0])  # loads the script
    trips[0] = 0
    with mock.patch.object(outbox, "claim_wake", wraps=outbox.claim_wake) as claim:
        token = flows.send_otp(caller, usage="signup", phone_number=PHONES[1]).token
    assert trips[0] == 1  # the count alone: it read the flag's lifetime too
    assert not claim.called and not broker.called
    assert row(token).delivery_status == DeliveryStatus.QUEUED  # for the pending run


@pytest.mark.django_db(transaction=True)
def test_a_send_whose_window_passed_sets_the_flag_itself(
    redis, caller, broker, trips, monkeypatch: pytest.MonkeyPatch
):
    """Between its count and its commit the send took longer than the flag could be relied on
    (RELY_SECONDS): its ``SET NX`` finds the flag and publishes nothing, as before."""
    assert outbox.claim_wake()
    flows.send_otp(caller, usage="signup", phone_number=PHONES[0])
    slow = flows.issuing.new_token

    def new_token(*args: Any, **kwargs: Any) -> Any:
        time.sleep(outbox.RELY_SECONDS)
        return slow(*args, **kwargs)

    monkeypatch.setattr(flows.issuing, "new_token", new_token)
    trips[0] = 0
    with mock.patch.object(outbox, "claim_wake", wraps=outbox.claim_wake) as claim:
        flows.send_otp(caller, usage="signup", phone_number=PHONES[1])
    assert trips[0] == 2 and claim.call_count == 1 and not broker.called


@pytest.mark.django_db(transaction=True)
def test_a_send_with_no_flag_publishes(redis, caller, broker):
    flows.send_otp(caller, usage="signup", phone_number=PHONES[0])
    assert broker.call_count == 1 and flag()[0] == "1"


def test_the_hint_is_read_only_inside_its_window(redis, caller, broker):
    token = queued(caller)
    dispatch.wake(token, time.monotonic() + 1)  # trusted: no SET NX, no publish
    assert flag() == (None, 0) and not broker.called
    dispatch.wake(token, time.monotonic() - 0.001)
    assert flag()[0] == "1" and broker.call_count == 1
    dispatch.wake(token)  # no hint: the flag is set already, nothing published
    assert broker.call_count == 1


@pytest.mark.django_db(transaction=True)
def test_another_cache_always_sets_the_flag(caller, broker):
    """The fast suite's local-memory cache: the count reads no lifetime, the send asks."""
    assert isinstance(counters.get_store(), counters.CacheStore)
    with mock.patch.object(outbox, "claim_wake", wraps=outbox.claim_wake) as claim:
        for phone in PHONES[:2]:
            flows.send_otp(caller, usage="signup", phone_number=phone)
    assert claim.call_count == 2 and broker.call_count == 1


def test_another_cache_run_deletes_the_flag_and_looks_at_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(outbox.time, "sleep", mock.Mock(side_effect=AssertionError("slept")))
    assert outbox.claim_wake()
    outbox.let_go_of_wake()
    assert outbox.claim_wake()


# --- the run's side ------------------------------------------------------------------------------


def test_a_token_a_send_committed_relying_on_the_flag_is_taken_by_the_last_look(
    redis, caller, answers, broker, monkeypatch: pytest.MonkeyPatch
):
    """The run lets go of the flag; a send reads it (about RELY_SECONDS left), commits and
    skips its ``SET NX``; the run's last look comes after the flag is gone and takes it."""
    first = queued(caller, PHONES[0])
    assert outbox.claim_wake()  # the first send's wake-up: this run
    late: list[OTPToken] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if not late:  # the run's first wait: its flag is set
            assert flag()[0].startswith(outbox.RUN_VALUE_PREFIX)
            until = seen_now()
            late.append(queued(caller, PHONES[1]))  # committed (one transaction: visible)
            with mock.patch.object(outbox, "claim_wake") as claim:
                dispatch.wake(late[0], until)
            assert not claim.called and not broker.called  # relied on the run's flag
        real_sleep(seconds)

    looks: list[tuple[str | None, int]] = []
    drain = outbox._drain

    def spy(run: outbox.DueRun, *args: Any, skip_locked: bool = True, **kwargs: Any) -> None:
        if not skip_locked:
            looks.append(flag())
        drain(run, *args, skip_locked=skip_locked, **kwargs)

    monkeypatch.setattr(outbox.time, "sleep", sleep)
    monkeypatch.setattr(outbox, "_drain", spy)
    run = outbox.deliver_due(started=time.monotonic(), publish_retry=lambda r: True, linger=0.0)
    assert looks == [(None, 0)]  # the last look came after the run's flag expired
    assert run.sent == 2
    assert {row(first).delivery_status, row(late[0]).delivery_status} == {DeliveryStatus.SENT}
    assert sent_to() == [e164(PHONES[0]), e164(PHONES[1])]


def test_a_run_waits_out_its_own_flag(redis):
    assert outbox.claim_wake()  # a send's flag, 2 s
    started = time.monotonic()
    outbox.let_go_of_wake()
    assert time.monotonic() - started >= outbox.RELY_SECONDS
    # Gone, or in its last millisecond (Redis expires in whole milliseconds, on a clock
    # cached per command): RELY_MARGIN_SECONDS covers that on the sends' side.
    assert flag()[1] <= 1
    time.sleep(0.002)
    assert flag() == (None, 0)  # gone: the next send publishes
    assert outbox.claim_wake()


def test_a_flag_gone_early_does_not_end_the_wait_early(redis, monkeypatch: pytest.MonkeyPatch):
    """An eviction, a failover or a FLUSHDB: a send may have read the flag just before."""
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        outbox.release_wake()
        real_sleep(seconds)

    monkeypatch.setattr(outbox.time, "sleep", sleep)
    started = time.monotonic()
    outbox.let_go_of_wake()
    assert time.monotonic() - started >= outbox.RELY_SECONDS


def test_a_run_waits_out_its_flag_when_another_run_takes_it_over(
    redis, monkeypatch: pytest.MonkeyPatch
):
    """Run B sets the flag while run A waits: A waits all the same (B may die before its own
    last look; ``test_outbox_wake_review`` shows the token that would be left)."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        counters.store.hand_over(outbox.WAKE_KEY, f"{outbox.RUN_VALUE_PREFIX}b", 1000)  # B

    monkeypatch.setattr(outbox.time, "sleep", sleep)
    outbox.let_go_of_wake()  # run A
    assert slept == [outbox.RELY_SECONDS] and flag()[0] == f"{outbox.RUN_VALUE_PREFIX}b"


def test_a_cache_that_fails_still_waits_for_the_sends_that_read_the_flag(
    redis, monkeypatch: pytest.MonkeyPatch
):
    slept: list[float] = []
    monkeypatch.setattr(outbox.time, "sleep", slept.append)
    with mock.patch.object(counters.store, "cache_is_down", return_value=True):
        outbox.let_go_of_wake()
    assert slept == [outbox.RELY_SECONDS]
