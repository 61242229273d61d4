"""An outsider's review of the outbox (af38abe): the scenarios it found, as tests.

Each test was written failing against af38abe and states the guarantee it
checks; the docstrings tell the scenario as found. All pass since the review's
fixes but one (a strict xfail: the window is narrowed, not closed), and two show
what is left to the beat's sweep. They reuse the fixtures and helpers of
``tests/test_outbox.py`` (SQLite, eager Celery, a test-driven clock).
"""

# ruff: noqa: F811 - the fixtures imported from tests.test_outbox are parameters here

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError as DatabaseError
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError

from django_ciam_otp import counters, delivery, dispatch, flows, outbox, signals, sql, tasks
from django_ciam_otp.exceptions import TemporarilyUnavailable
from django_ciam_otp.managers.tokens import OUTBOX_FIELDS, OTPTokenQuerySet
from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota, TokenStatus
from tests import test_outbox
from tests.test_outbox import (  # noqa: F401 - fixtures
    PHONES,
    ByNumber,
    Clock,
    answers,
    caller,
    clock,
    e164,
    queued,
    row,
    run_now,
    sent_to,
)

pytestmark = pytest.mark.django_db


class FlakyBroker:
    """Stands in for ``tasks.deliver_due``: the first publish fails as a dead broker's does,
    after ``during`` ran (what happens elsewhere while the publish is being retried);
    later publishes succeed and are counted."""

    class app:  # noqa: N801 - mirrors task.app.conf.task_always_eager
        class conf:  # noqa: N801
            task_always_eager = False

    def __init__(self, during: Callable[[], None]) -> None:
        self.during: Callable[[], None] | None = during
        self.published = 0

    def apply_async(self, *args: Any, **kwargs: Any) -> None:
        hook, self.during = self.during, None
        if hook is None:
            self.published += 1
            return
        hook()
        raise OperationalError("connection refused")


# --- codes whose wake-up was lost: the beat's sweep takes them -----------------------------------


@pytest.mark.django_db(transaction=True)  # the wake-up runs at each send's own commit
def test_a_send_that_found_the_flag_of_a_failing_publish_is_left_to_the_sweep(
    client_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Send A sets the flag and its publish fails (PUBLISH_RETRY_POLICY keeps it trying for a
    while); send B commits meanwhile, finds A's flag and publishes nothing (answers 200). A
    answers 503 and clears the flag: B's code waits in the outbox with no run queued for it,
    until the next send's wake-up or the beat's sweep (``deliver_due`` every 10 s)."""
    api_client = client_factory(sms_quota=10).client
    b_tokens: list[OTPToken] = []

    def b_sends() -> None:
        b_tokens.append(flows.send_otp(api_client, usage="signup", phone_number=PHONES[1]).token)

    broker = FlakyBroker(during=b_sends)
    real = tasks.deliver_due
    monkeypatch.setattr(tasks, "deliver_due", broker)
    with pytest.raises(TemporarilyUnavailable):
        flows.send_otp(api_client, usage="signup", phone_number=PHONES[0])
    [b] = b_tokens
    stored = row(b)
    assert stored.delivery_status == DeliveryStatus.QUEUED and stored.delivery_envelope
    assert broker.published == 0  # the known gap: no run was queued for B
    monkeypatch.setattr(tasks, "deliver_due", real)
    tasks.deliver_due.apply()  # the beat's sweep
    assert row(b).delivery_status == DeliveryStatus.SENT
    assert sent_to() == [e164(PHONES[1])]


def test_a_flag_the_run_could_not_clear_leaves_later_sends_to_the_sweep(
    caller: Any, answers: dict[str, str]
) -> None:
    """``release_wake`` does nothing while this worker's cache breaker is open (or the DELETE
    fails); the run still takes its last look and ends. A send in the flag's remaining life
    (up to WAKE_SECONDS) finds the flag set and publishes nothing; the beat's sweep takes it."""
    queued(caller, PHONES[0])
    assert outbox.claim_wake()  # the first send's wake-up

    def release_with_breaker_open() -> None:
        with mock.patch.object(counters.store, "cache_is_down", return_value=True):
            outbox.release_wake()

    run = outbox.deliver_due(
        started=time.monotonic(),
        publish_retry=lambda retry: True,
        release=release_with_breaker_open,
        linger=0.0,
    )
    assert (run.sent, run.more, run.come_back_in) == (1, False, None)
    late = queued(caller, PHONES[1])  # commits after the run's last look
    with mock.patch.object(tasks.deliver_due, "apply_async") as publish:
        dispatch.wake(late)
    assert not publish.called  # the known gap: the flag outlived the run that held it
    tasks.deliver_due.apply()  # the beat's sweep
    assert row(late).delivery_status == DeliveryStatus.SENT


def test_a_stalled_run_still_takes_its_last_look(caller: Any, answers: dict[str, str]) -> None:
    """One retry cannot be published (a broker blip): the run clears the flag and stops
    without the last look, although delivering the sends that relied on it needs no broker."""
    queued(caller, PHONES[0])
    answers[e164(PHONES[0])] = "transient"
    assert outbox.claim_wake()  # the first send's wake-up: this run
    late: list[OTPToken] = []

    def publish_retry(retry: outbox.Retry) -> bool:
        # While the run holds the flag, a send commits: its wake-up publishes nothing.
        late.append(queued(caller, PHONES[1]))
        with mock.patch.object(tasks.deliver_due, "apply_async") as publish:
            dispatch.wake(late[0])
        assert not publish.called
        return False  # the retry's publish failed once

    run = run_now(publish_retry)
    assert run.stalled
    assert outbox.claim_wake()  # the flag was cleared
    assert row(late[0]).delivery_status == DeliveryStatus.SENT, (
        "the send that relied on this run's last look is left in the outbox, "
        f"no run queued (more={run.more}, come_back_in={run.come_back_in})"
    )


def test_an_exception_in_a_run_gives_back_the_rest_of_its_batch(
    caller: Any, answers: dict[str, str]
) -> None:
    """Anything raising mid-batch (a signal receiver, a database error, the soft time limit
    outside a backend call) ends the run: the rest of its batch stays claimed, no follow-up
    is scheduled, the flag is not cleared and the last look never happens."""
    doomed, innocent = queued(caller, PHONES[0]), queued(caller, PHONES[1])
    answers[e164(PHONES[0])] = "permanent"

    def receiver(**kwargs: Any) -> None:
        raise RuntimeError("a site's receiver failed")

    signals.otp_delivery_failed.connect(receiver)
    try:
        with pytest.raises(RuntimeError):
            run_now()
    finally:
        signals.otp_delivery_failed.disconnect(receiver)
    assert row(doomed).delivery_status == DeliveryStatus.FAILED
    assert row(innocent).delivery_status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT), (
        "the rest of the batch stays claimed (sending) with nobody to come back for it; "
        "a later run waits out DELIVERY_CLAIM_LEASE first"
    )


# --- double sends ------------------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason=(
        "narrowed, not closed: sent messages are recorded every RECORD_SECONDS; a record "
        "lost within that window is sent again after the lease"
    ),
)
def test_a_batch_whose_outcome_statement_is_lost_is_not_sent_again(
    caller: Any, answers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch records its sent messages only after its last message: if that statement does
    not happen (the worker is killed mid-batch, the database connection drops), every message
    accepted so far keeps its envelope on a claimed row, and the next run after the lease
    sends each of them again. With a task per code the row held no envelope, and the window
    was one message, not a whole batch."""
    tokens = [queued(caller, phone) for phone in PHONES[:3]]
    real = OTPTokenQuerySet.mark_sent_many
    calls = iter([True])

    def lost(self: OTPTokenQuerySet, sent: Any, **kwargs: Any) -> set[int]:
        if next(calls, False):
            raise DatabaseError("server closed the connection unexpectedly")
        return real(self, sent, **kwargs)

    monkeypatch.setattr(OTPTokenQuerySet, "mark_sent_many", lost)
    with pytest.raises(DatabaseError):
        run_now()
    assert sent_to() == [e164(p) for p in PHONES[:3]]
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=26)):
        run_now()  # any later run (a follow-up, the next send's)
    assert [row(t).delivery_status for t in tokens] == [DeliveryStatus.SENT] * 3
    assert sent_to() == [e164(p) for p in PHONES[:3]], "each code went out twice"


# --- a 503 for a code that went out ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_send_whose_token_a_running_run_took_while_its_wake_up_failed_stands(
    client_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token commits with its envelope before the wake-up publishes. A run already going
    (a ``more`` chain, a follow-up, one whose flag lapsed) may claim and send it while the
    publish is failing: the send then answers as sent (no 503 for a code that went out, no
    refund of a message the provider bills) instead of deleting the row."""
    api_client = client_factory(sms_quota=10).client

    def a_running_run() -> None:
        outbox.deliver_due(
            started=time.monotonic(),
            publish_retry=lambda retry: True,
            release=lambda: None,
            linger=0.0,
        )

    monkeypatch.setattr(tasks, "deliver_due", FlakyBroker(during=a_running_run))
    result = flows.send_otp(api_client, usage="signup", phone_number=PHONES[0])
    token = OTPToken.objects.get()
    assert token.pk == result.token.pk and token.delivery_status == DeliveryStatus.SENT
    assert Quota.objects.get().used == 1
    assert sent_to() == [e164(PHONES[0])]


# --- retries -----------------------------------------------------------------------------------


def test_a_retry_task_finds_its_token_requeued_and_sends_at_once(
    caller: Any, answers: dict[str, str]
) -> None:
    """The retry is published (countdown often the 0.1 s minimum) before the token is requeued;
    a worker that runs it first finds the run's live claim and comes back after
    DELIVERY_CLAIM_LEASE (25 s of a 60 s code)."""
    queued(caller)
    answers[e164(PHONES[0])] = "transient"
    outcomes: list[delivery.RetryLater | None] = []

    def publish_retry(retry: outbox.Retry) -> bool:
        answers.clear()  # the provider is fine again
        # The requeue UPDATE is slow (a busy database): the retry task runs first.
        outcomes.append(delivery.deliver(retry.token_id, retry.envelope, attempt=retry.attempt))
        return True

    run_now(publish_retry)
    [outcome] = outcomes
    assert outcome is None, f"the retry waits {outcome.countdown:.1f} s for the run's own claim"


def test_a_stalled_run_publishes_no_more_retries(caller: Any, answers: dict[str, str]) -> None:
    """Once a retry's publish failed the run is 'stalled', yet it keeps offering the batch and
    publishing a retry for each transient failure, each through the full PUBLISH_RETRY_POLICY
    (connection timeouts included): a batch of 50 meets the soft and hard time limits."""
    for phone in PHONES[:4]:
        queued(caller, phone)
        answers[e164(phone)] = "transient"
    attempts: list[int] = []

    def broker_down(retry: outbox.Retry) -> bool:
        attempts.append(retry.token_id)
        return False

    run = run_now(broker_down)
    assert run.stalled
    assert len(attempts) == 1, f"{len(attempts)} publishes against a broker known to be down"


def test_the_soft_time_limit_in_a_publish_is_not_taken_for_a_broker_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``tasks.publish`` turns every exception into TemporarilyUnavailable, SoftTimeLimitExceeded
    too: a run whose retry publish meets the soft limit carries on (stalled) toward the hard
    limit instead of stopping."""

    class Slow:
        class app:  # noqa: N801
            class conf:  # noqa: N801
                task_always_eager = False

        @staticmethod
        def apply_async(*args: Any, **kwargs: Any) -> None:
            raise SoftTimeLimitExceeded()

    with pytest.raises(SoftTimeLimitExceeded):
        tasks.publish(Slow, (), "()")


# --- quota and envelopes -------------------------------------------------------------------------


def test_a_superseded_outbox_token_expires_with_its_quota_back(
    caller: Any, answers: dict[str, str], settings: Any
) -> None:
    """A task per code closed a token superseded before its delivery at once (expired, quota
    back). The batch claims only pending tokens: a superseded one keeps its envelope and its
    quota until the beat sweep runs after its code's validity (never, without beat)."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": []}
    old = queued(caller, PHONES[0])
    new = queued(caller, PHONES[0])
    OTPToken.objects.supersede_older(new)
    assert row(old).status == TokenStatus.SUPERSEDED
    run_now()
    stored = row(old)
    assert (stored.delivery_status, stored.delivery_envelope) != (
        DeliveryStatus.QUEUED,
        old.delivery_envelope,
    ), "the superseded token's sealed code stays on its row"
    assert Quota.objects.get().used == 1, "the superseded token's quota is still taken"


# --- time ----------------------------------------------------------------------------------------


def test_a_run_starts_no_message_after_batch_seconds(
    caller: Any, answers: dict[str, str], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/celery.md, docs/settings.md, outbox.BATCH_SECONDS: 'a run stops starting messages
    after 2 seconds'. Within a batch only failover's walk budget (13 s less the backend's
    worst case) is checked, so a batch goes on for ~8 s, one message after another."""
    monkeypatch.setattr(test_outbox, "SLOW_SECONDS", 1.5)  # a provider answering in 1.5 s
    for phone in PHONES[:5]:
        queued(caller, phone)
        answers[e164(phone)] = "slow"
    started = clock.now
    starts: list[float] = []
    answer = ByNumber.answer

    def timed(self: ByNumber, message: Any) -> Any:
        starts.append(clock.now - started)
        return answer(self, message)

    monkeypatch.setattr(ByNumber, "answer", timed)
    outbox.deliver_due(started=started, publish_retry=lambda retry: True, linger=0.0)
    assert max(starts) <= outbox.BATCH_SECONDS, f"messages started at {starts} s of the run"


# --- SQL -----------------------------------------------------------------------------------------


def test_the_claim_reads_the_outbox_through_its_partial_index_on_sqlite() -> None:
    """The index's condition is ``NOT (delivery_envelope = '')``, and the claim says the same:
    SQLite uses a partial index only for a term it can match (``<> ''`` scanned the table)."""
    statement = sql.delivery_claim_due("default", OTPToken, OUTBOX_FIELDS)
    now = "2025-01-01 00:00:00"
    params = ["sending", now, now, "queued", "sending", now, 50]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + statement.replace("%s", "?"), params)
        plan = [str(step[-1]) for step in cursor.fetchall()]
    assert any("ciam_otp_token_outbox_idx" in step for step in plan), plan
