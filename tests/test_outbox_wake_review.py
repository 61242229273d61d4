"""Outsider's review of be7a901: a send under load skips the wake-up flag's ``SET NX``.

The claimed invariant: every flag a send relied on (read with ``p`` ms left at
``asked_at``, relied on until ``asked_at + min(p, RELY_SECONDS) - margin``) is
followed, after it expires or is replaced, by a last look of some run. So
after a run's ``let_go_of_wake`` returns, no send may still be relying on a
flag that this run (or a run it deferred to) is the last look for.

The first two tests are the two defects the review found in be7a901 (both
fixed: a failed hand-over waits from the error, and a run waits out its own
flag even when another run took it over); the others document what holds.
"""

# ruff: noqa: F811 - the fixtures imported below are parameters here

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
import redis as redis_py

from django_ciam_otp import counters, dispatch, outbox, ratelimits
from django_ciam_otp.counters import CountPlan
from django_ciam_otp.counters.redis import RedisStore
from django_ciam_otp.flows import counting
from django_ciam_otp.models import DeliveryStatus, OTPToken
from tests.counters.conftest import redis, redis_server  # noqa: F401 - fixtures
from tests.test_outbox import (  # noqa: F401 - fixtures
    PHONES,
    answers,
    caller,
    queued,
    row,
)
from tests.test_outbox_wake import broker, flag, seen_now  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


# --- the review's two defects, fixed ------------------------------------------------------------


def test_a_hand_over_that_landed_but_timed_out_is_waited_out_from_the_error(
    redis, monkeypatch: pytest.MonkeyPatch
):
    """The run's ``SET PX 50`` reaches Redis late (30 ms after the call) and the client gives
    up (a socket timeout: ``CacheUnavailable``). ``let_go_of_wake`` then sleeps only until
    the deadline it computed *before* the call, so it returns (and the run takes its last
    look) while its own flag still lives ~30 ms: a send reading the flag now relies on it,
    commits, skips its ``SET NX`` and waits for the beat's sweep. Before be7a901 the release
    was a ``DEL``: a late DEL only let the next send publish. Now the wait counts from the
    error."""
    real = RedisStore.hand_over

    def late_then_timeout(self: RedisStore, key: str, value: str, ms: int) -> bool:
        time.sleep(0.03)  # the command in flight
        real(self, key, value, ms)  # lands on Redis
        raise redis_py.exceptions.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(RedisStore, "hand_over", late_then_timeout)
    outbox.let_go_of_wake()  # the run is done waiting: its last look comes now
    counters.reset_breaker()  # a web process's breaker: it never saw the timeout
    relied_until = seen_now()  # a send's count reads the flag now
    assert relied_until <= time.monotonic(), (
        f"a send relies on the run's flag for {1000 * (relied_until - time.monotonic()):.0f} ms "
        f"after the run's last look: {flag()}"
    )


def test_a_run_waits_out_its_flag_even_when_another_run_took_it_over(
    redis, caller, answers, broker, monkeypatch: pytest.MonkeyPatch
):
    """Run A lets go (``run:a`` for 50 ms); a send reads ``run:a`` and will rely on it for
    ~45 ms; run B sets ``run:b`` and then dies before its last look (worker killed, hard
    time limit, ``SoftTimeLimitExceeded`` in its own wait). Had A returned at once on seeing
    ``run:b`` (as be7a901 did), its last look would have come before the send committed and
    the token would have waited for the sweep. A waits out its own flag: its last look
    takes the token."""
    real_sleep = time.sleep
    state: dict[str, Any] = {}

    def sleep(seconds: float) -> None:
        if "late" not in state:
            assert flag()[0].startswith(outbox.RUN_VALUE_PREFIX)  # run A's flag
            until = seen_now()  # a send reads run A's flag
            counters.store.hand_over(outbox.WAKE_KEY, f"{outbox.RUN_VALUE_PREFIX}b", 50)  # B
            # ... and B dies here. The send commits inside its window and skips its wake-up.
            state["late"] = late = queued(caller, PHONES[1])
            assert time.monotonic() < until, "slow machine: the send's window passed"
            with mock.patch.object(outbox, "claim_wake") as claim:
                dispatch.wake(late, until)
            assert not claim.called and not broker.called
        real_sleep(seconds)

    monkeypatch.setattr(outbox.time, "sleep", sleep)
    run = outbox.deliver_due(started=time.monotonic(), publish_retry=lambda r: True, linger=0.0)
    assert run.sent == 1 and row(state["late"]).delivery_status == DeliveryStatus.SENT


# --- what holds ---------------------------------------------------------------------------------


def test_a_count_that_failed_or_was_uncounted_never_skips(redis):
    """No result (the cache down, nothing counted): ``wake_flag_until`` is 0.0."""
    assert outbox.claim_wake()
    charge = ratelimits.SendCharge(mock.Mock(), mock.Mock(), None, time.monotonic())
    assert counting.wake_flag_until(charge) == 0.0
    with mock.patch.object(counters.store, "cache_is_down", return_value=True):
        with pytest.raises(counters.CacheUnavailable):
            counters.store.count(CountPlan(ttl_of=outbox.WAKE_KEY))


def test_a_flag_without_expiry_or_missing_is_never_relied_on(redis):
    redis_py_client = counters.get_store().access.client
    key = counters.get_store().access.make_key(outbox.WAKE_KEY)
    assert seen_now() == 0.0  # missing: PTTL -2
    redis_py_client.set(key, 1)  # no expiry: PTTL -1
    assert seen_now() == 0.0


def test_a_long_lived_flag_is_relied_on_for_rely_seconds_only(redis):
    assert outbox.claim_wake()  # 2 s
    asked = time.monotonic()
    until = seen_now()
    assert until - asked <= outbox.RELY_SECONDS - outbox.RELY_MARGIN_SECONDS + 0.001


def test_a_run_that_stops_for_time_keeps_the_flag_and_takes_no_last_look(
    redis, caller, answers, monkeypatch: pytest.MonkeyPatch
):
    """``run.more``: no hand-over and no last look; the task publishes the next run,
    which lets go later (sends that rely on the kept flag are its)."""
    queued(caller, PHONES[0])
    assert outbox.claim_wake()
    release = mock.Mock()
    run = outbox.deliver_due(
        started=time.monotonic() - outbox.BATCH_SECONDS - 1,
        publish_retry=lambda r: True,
        release=release,
        linger=0.0,
    )
    assert run.more and not release.called
    assert flag()[0] == "1"


def test_the_last_look_of_a_run_near_its_time_limit_looks_at_nothing(
    redis, caller, answers, monkeypatch: pytest.MonkeyPatch
):
    """After the 50 ms wait the last look's ``_drain`` may find the run's BATCH_SECONDS spent:
    it claims nothing and sets ``run.more``; the task then publishes another run (which
    covers the token). Documented: the last look is not a look in that case."""
    started = time.monotonic() - outbox.BATCH_SECONDS + 0.02
    late: list[OTPToken] = []

    def release() -> None:
        late.append(queued(caller, PHONES[2]))
        time.sleep(0.03)

    run = outbox.deliver_due(started=started, publish_retry=lambda r: True, release=release)
    assert run.more
    assert row(late[0]).delivery_status == DeliveryStatus.QUEUED
