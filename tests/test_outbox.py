"""The outbox (``outbox.py``): sealed messages waiting on their token rows, delivered in batches.

A send outside a caller's transaction stores its sealed message with the
token and wakes the batch task (``dispatch.wake``); a run of it claims the
outbox in batches, offers each message along its route and records the
batch's sent messages. Here on SQLite (one writer, no ``SKIP LOCKED``; the
sent messages are recorded a statement each) with eager Celery; what needs
PostgreSQL's row locks, and its one statement per batch, is in
``tests/postgres/test_outbox_postgres.py``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any, ClassVar
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ciam_otp import (
    circuit,
    counters,
    crypto,
    delivery,
    dispatch,
    failover,
    flows,
    outbox,
    signals,
    tasks,
)
from django_ciam_otp.backends.base import (
    Accepted,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.counters.store import counter_cache
from django_ciam_otp.exceptions import TemporarilyUnavailable
from django_ciam_otp.managers.tokens import OTPTokenQuerySet, SentRow
from django_ciam_otp.models import DeliveryStatus, OTPClient, OTPToken, Quota, TokenStatus
from tests.conftest import Api, ApiClient
from tests.support import sms_backends
from tests.support.brokers import DeadBroker

pytestmark = pytest.mark.django_db

PHONES = [f"136{i}1234567" for i in range(10)]  # a prefix block each (conversion monitor)
START = dt.datetime(2025, 5, 1, 8, 0, tzinfo=dt.UTC)
#: How long a "slow" answer takes on the test's clock: the walk's budget is then spent.
SLOW_SECONDS = 12.0


def e164(phone: str) -> str:
    return "+86" + phone


class Clock:
    """``time.monotonic`` for outbox.py and failover.py, moved on by hand (or a slow backend)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class ByNumber(sms_backends.ScriptedSMSBackend):
    """Answers each number as :attr:`answers` says; any other number's message goes out.

    ``"transient"``: throttled (surely not taken); ``"permanent"``: the number
    does not exist; ``"slow"``: sent, after :data:`SLOW_SECONDS` on :attr:`clock`.
    """

    default_name = "by_number"
    answers: ClassVar[dict[str, str]] = {}
    clock: ClassVar[Clock | None] = None

    def answer(self, message: OTPMessage) -> str | Accepted:
        step = self.answers.get(message.recipient, "deliver")
        if step == "transient":
            raise TransientDeliveryError("provider throttled", provider_code="Throttled")
        if step == "permanent":
            raise PermanentDeliveryError("number does not exist", provider_code="InvalidNumber")
        if step == "slow":
            assert self.clock is not None
            self.clock.now += SLOW_SECONDS
        return super().answer(message)


@pytest.fixture
def answers(settings: Any) -> Iterator[dict[str, str]]:
    """One SMS backend, ``main`` (:class:`ByNumber`); the dict says how it answers each number."""
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [{"NAME": "main", "BACKEND": f"{__name__}.ByNumber"}],
    }
    ByNumber.answers.clear()
    yield ByNumber.answers
    ByNumber.answers.clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The run's and the walk's ``time.monotonic``, in the test's hands."""
    clock = Clock()
    monkeypatch.setattr(outbox, "time", clock)
    monkeypatch.setattr(failover, "time", clock)
    monkeypatch.setattr(ByNumber, "clock", clock)
    return clock


@pytest.fixture
def caller(client_factory: Any) -> OTPClient:
    client: OTPClient = client_factory(sms_quota=10).client
    return client


@pytest.fixture
def failures() -> Iterator[list[tuple[int, str]]]:
    seen: list[tuple[int, str]] = []

    def receiver(sender: Any, token: OTPToken, reason: str, **kwargs: Any) -> None:
        seen.append((token.pk, reason))

    signals.otp_delivery_failed.connect(receiver)
    yield seen
    signals.otp_delivery_failed.disconnect(receiver)


def queued(caller: OTPClient, phone: str = PHONES[0]) -> OTPToken:
    """A token waiting in the outbox: its sealed message on the row, nobody woken.

    The send's ``on_commit`` (``dispatch.wake``) does not run inside the test's transaction.
    """
    token = flows.send_otp(caller, usage="signup", phone_number=phone).token
    token.refresh_from_db()
    assert token.delivery_status == DeliveryStatus.QUEUED and token.delivery_envelope
    return token


def row(token: OTPToken) -> OTPToken:
    return OTPToken.objects.get(pk=token.pk)


def run_now(publish_retry: outbox.PublishRetry = lambda retry: True) -> outbox.DueRun:
    return outbox.deliver_due(started=time.monotonic(), publish_retry=publish_retry, linger=0.0)


def sent_to() -> list[str]:
    from django_ciam_otp.backends.sms import locmem

    return [m.phone_number for m in locmem.outbox]


# --- a send through the API ------------------------------------------------------------------


def test_a_send_waits_sealed_on_its_row_and_the_batch_task_sends_it_once(
    api: Api, api_client: ApiClient, sms_outbox: list[Any]
) -> None:
    with mock.patch.object(tasks.deliver_due, "apply_async") as woken:
        response = api.send({"usage": "signup", "phone_number": PHONES[0]}, auth=api_client)
    assert response.status_code == 200, response.content
    assert woken.call_count == 1 and woken.call_args.kwargs["args"] == ()
    token = OTPToken.objects.get()
    assert token.delivery_status == DeliveryStatus.QUEUED
    payload = crypto.unseal(token.delivery_envelope)
    assert payload["r"] == e164(PHONES[0]) and payload["h"] == token.token_hash[:16]
    assert PHONES[0] not in token.delivery_envelope  # sealed, not merely encoded
    assert sms_outbox == []

    tasks.deliver_due.apply()
    [sms] = sms_outbox
    assert (sms.phone_number, sms.code, sms.token_id) == (e164(PHONES[0]), payload["c"], token.pk)
    stored = row(token)
    assert stored.delivery_status == DeliveryStatus.SENT
    assert stored.delivery_envelope == ""
    assert (stored.provider_message_id, stored.delivery_attempts) == (sms.message_id, 1)
    assert outbox.claim_wake()  # the run cleared the flag: the next send publishes again

    tasks.deliver_due.apply()  # a second run (a redelivered task) finds nothing to send
    assert len(sms_outbox) == 1
    verified = api.verify(
        {
            "otp_token": response.json()["otp_token"],
            "otp": sms.code,
            "phone_number": PHONES[0],
            "usage": "signup",
        },
        auth=api_client,
    )
    assert verified.status_code == 200, verified.content


def test_with_eager_celery_the_wake_up_delivers_at_commit(
    api: Api, api_client: ApiClient, sms_outbox: list[Any]
) -> None:
    for phone in PHONES[:2]:
        response = api.send({"usage": "signup", "phone_number": phone}, auth=api_client)
        assert response.status_code == 200, response.content
    assert [m.phone_number for m in sms_outbox] == [e164(p) for p in PHONES[:2]]
    assert set(OTPToken.objects.values_list("delivery_status", "delivery_envelope")) == {
        (DeliveryStatus.SENT, "")
    }


# --- batches ---------------------------------------------------------------------------------


def kind(statement: str) -> str:
    """A run's statements by what they do."""
    if statement.startswith("UPDATE") and " LIMIT " in statement:
        return "claim"
    if statement.startswith("UPDATE") and '"provider_message_id" =' in statement:
        return "sent"
    if statement.startswith("SELECT") and "MIN(" in statement:
        return "oldest claim"
    return statement


def test_a_run_delivers_the_outbox_in_batches_of_the_configured_size(
    caller: OTPClient, answers: dict[str, str], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_BATCH_SIZE": 2}
    tokens = [queued(caller, phone) for phone in PHONES[:5]]
    claimed: list[list[int]] = []
    recorded: list[list[int]] = []
    claim_due, mark_sent_many = OTPTokenQuerySet.claim_due, OTPTokenQuerySet.mark_sent_many

    def spy_claim(self: OTPTokenQuerySet, **kwargs: Any) -> list[OTPToken]:
        batch = claim_due(self, **kwargs)
        claimed.append([t.pk for t in batch])
        return batch

    def spy_sent(self: OTPTokenQuerySet, sent: list[SentRow], **kwargs: Any) -> set[int]:
        recorded.append([r.pk for r in sent])
        return mark_sent_many(self, sent, **kwargs)

    monkeypatch.setattr(OTPTokenQuerySet, "claim_due", spy_claim)
    monkeypatch.setattr(OTPTokenQuerySet, "mark_sent_many", spy_sent)
    with CaptureQueriesContext(connection) as queries:
        run = run_now()

    pks = [t.pk for t in tokens]
    # Three claims take the five, oldest first; the fourth is the last look after the
    # wake-up flag was cleared (the third came back short: the outbox looked empty).
    assert claimed == [pks[:2], pks[2:4], pks[4:], []]
    assert recorded == [pks[:2], pks[2:4], pks[4:]]  # each batch's outcome recorded at once
    assert [kind(q["sql"]) for q in queries.captured_queries] == [
        "claim",
        "sent",  # SQLite: a statement per message; PostgreSQL: one per batch
        "sent",
        "claim",
        "sent",
        "sent",
        "claim",
        "sent",
        "claim",
        "oldest claim",
    ]
    assert (run.sent, run.offered, run.more, run.come_back_in) == (5, 5, False, None)
    assert run.retried == 0
    assert sent_to() == [e164(p) for p in PHONES[:5]]  # each once
    assert set(OTPToken.objects.values_list("delivery_status", "delivery_envelope")) == {
        (DeliveryStatus.SENT, "")
    }


def test_a_transient_failure_in_a_batch_becomes_a_retry_task_of_its_own(
    caller: OTPClient, answers: dict[str, str]
) -> None:
    tokens = [queued(caller, phone) for phone in PHONES[:3]]
    throttled = tokens[1]
    envelope = throttled.delivery_envelope
    answers[e164(PHONES[1])] = "transient"
    with mock.patch.object(tasks.deliver_otp, "apply_async") as retry:
        tasks.deliver_due.apply()

    assert retry.call_count == 1
    options = retry.call_args.kwargs
    assert options["args"] == (throttled.pk, envelope)  # the sealed message rides the task
    assert 0 <= options["countdown"] <= delivery.BACKOFF_BASE  # backoff(0): full jitter, 1 s
    assert options["retries"] == 1  # the task's request.retries: its attempt
    assert options["expires"] == throttled.code_expires_at
    assert envelope not in options["argsrepr"] and str(throttled.pk) in options["argsrepr"]

    stored = row(throttled)
    assert stored.delivery_status == DeliveryStatus.QUEUED
    assert stored.delivery_envelope == ""  # out of the outbox: the task carries it now
    assert (stored.delivery_attempts, stored.delivery_error, stored.delivery_error_code) == (
        1,
        "provider throttled",
        "Throttled",
    )
    assert [row(t).delivery_status for t in (tokens[0], tokens[2])] == [DeliveryStatus.SENT] * 2
    assert sent_to() == [e164(PHONES[0]), e164(PHONES[2])]

    assert run_now().sent == 0  # no later run takes it from the retry
    answers.clear()
    assert delivery.deliver(*options["args"], attempt=options["retries"]) is None  # the retry
    assert (row(throttled).delivery_status, row(throttled).delivery_attempts) == (
        DeliveryStatus.SENT,
        2,
    )
    assert sent_to() == [e164(p) for p in (PHONES[0], PHONES[2], PHONES[1])]


def test_a_retry_leaves_the_outbox_only_once_published_so_a_dying_run_loses_nothing(
    caller: OTPClient, answers: dict[str, str]
) -> None:
    token = queued(caller)
    envelope = token.delivery_envelope
    answers[e164(PHONES[0])] = "transient"
    published: list[outbox.Retry] = []

    def publish_then_die(retry: outbox.Retry) -> bool:
        published.append(retry)
        # Requeued with its envelope first: were the worker killed now, the row still has it.
        stored = row(token)
        assert (stored.delivery_status, stored.delivery_envelope) == (
            DeliveryStatus.QUEUED,
            envelope,
        )
        raise SystemExit("the worker is killed here")

    with pytest.raises(SystemExit):
        run_now(publish_then_die)
    (retry,) = published
    assert retry.token_id == token.pk and retry.attempt == 1
    assert retry.countdown >= outbox.MIN_RETRY_COUNTDOWN
    # Both the published retry and any later run may take it; the claim lets one send it.
    answers.clear()
    assert run_now().sent == 1
    assert delivery.deliver(retry.token_id, retry.envelope, attempt=retry.attempt) is None
    assert row(token).delivery_status == DeliveryStatus.SENT
    assert sent_to() == [e164(PHONES[0])]


def test_a_retry_that_cannot_be_published_stays_in_the_outbox_for_the_next_run(
    caller: OTPClient, answers: dict[str, str]
) -> None:
    token = queued(caller)
    envelope = token.delivery_envelope
    answers[e164(PHONES[0])] = "transient"
    run = run_now(lambda retry: False)  # the broker is down
    assert (run.retried, run.stalled) == (0, True)  # the run stopped there
    stored = row(token)
    assert (stored.delivery_status, stored.delivery_envelope) == (DeliveryStatus.QUEUED, envelope)
    # The run's last look retried it once more (publishing nothing: the broker failed it).
    assert stored.delivery_attempts == 2
    answers.clear()
    assert run_now().sent == 1
    assert row(token).delivery_status == DeliveryStatus.SENT and row(token).delivery_envelope == ""


def test_a_permanent_failure_fails_its_token_and_gives_its_quota_back(
    caller: OTPClient, answers: dict[str, str], failures: list[tuple[int, str]]
) -> None:
    tokens = [queued(caller, phone) for phone in PHONES[:3]]
    assert Quota.objects.get().used == 3
    answers[e164(PHONES[1])] = "permanent"
    with mock.patch.object(tasks.deliver_otp, "apply_async") as retry:
        tasks.deliver_due.apply()
    assert not retry.called
    failed = row(tokens[1])
    assert (failed.delivery_status, failed.status) == (DeliveryStatus.FAILED, TokenStatus.FAILED)
    assert failed.delivery_error == "number does not exist"
    assert failed.delivery_envelope == ""
    assert not failed.quota_consumed
    assert Quota.objects.get().used == 2
    assert failures == [(failed.pk, "number does not exist")]
    assert [row(t).delivery_status for t in (tokens[0], tokens[2])] == [DeliveryStatus.SENT] * 2


@pytest.mark.parametrize("envelope", ["not an envelope", "wrong token"])
def test_an_envelope_that_does_not_open_fails_its_token(
    caller: OTPClient, answers: dict[str, str], failures: list[tuple[int, str]], envelope: str
) -> None:
    token, other = queued(caller, PHONES[0]), queued(caller, PHONES[1])
    if envelope == "wrong token":  # sealed, but for another token (or the hash key changed)
        envelope = crypto.seal({"h": "0" * 16, "c": "123456", "r": e164(PHONES[0])})
    OTPToken.objects.filter(pk=token.pk).update(delivery_envelope=envelope)
    run = run_now()
    assert run.sent == 1 and run.offered == 1
    stored = row(token)
    assert (stored.delivery_status, stored.status) == (DeliveryStatus.FAILED, TokenStatus.FAILED)
    assert stored.delivery_error == "envelope could not be opened (hash key changed?)"
    assert stored.delivery_envelope == ""
    assert Quota.objects.get().used == 1  # the failed token's quota came back
    assert [reason for _, reason in failures] == [stored.delivery_error]
    assert sent_to() == [e164(PHONES[1])]  # the backend never saw the first
    assert row(other).delivery_status == DeliveryStatus.SENT


# --- what a run may claim --------------------------------------------------------------------


def test_a_code_that_expired_is_not_claimed(caller: OTPClient, answers: dict[str, str]) -> None:
    with time_machine.travel(START, tick=False) as clock:
        token = queued(caller)
        clock.shift(dt.timedelta(seconds=60))  # the code's validity, exactly
        run = run_now()
        assert (run.sent, run.offered, run.come_back_in) == (0, 0, None)
        assert sent_to() == []
        stored = row(token)
        assert (stored.delivery_status, stored.delivery_started_at) == (DeliveryStatus.QUEUED, None)
        # The sweep closes it, takes it out of the outbox and gives its quota back.
        clock.shift(dt.timedelta(seconds=30))
        assert delivery.expire_stale_deliveries() == 1
    stored = row(token)
    assert (stored.delivery_status, stored.delivery_envelope) == (DeliveryStatus.EXPIRED, "")
    assert Quota.objects.get().used == 0


def test_another_runs_live_claim_is_left_alone_and_the_run_comes_back_when_it_runs_out(
    caller: OTPClient, answers: dict[str, str], settings: Any
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_CLAIM_LEASE": 20}
    token = queued(caller)
    claimed_at = timezone.now() - dt.timedelta(seconds=5)
    OTPToken.objects.filter(pk=token.pk).update(
        delivery_status=DeliveryStatus.SENDING, delivery_started_at=claimed_at
    )
    run = run_now()
    assert (run.sent, run.offered, run.more) == (0, 0, False)
    # About the lease left (20 - 5 s), plus up to a second of jitter.
    assert run.come_back_in is not None and 14.5 <= run.come_back_in <= 16.0
    stored = row(token)
    assert (stored.delivery_status, stored.delivery_started_at) == (
        DeliveryStatus.SENDING,
        claimed_at,
    )
    assert stored.delivery_envelope == token.delivery_envelope
    assert sent_to() == []


def test_a_claim_older_than_the_lease_is_taken_over(
    caller: OTPClient, answers: dict[str, str], settings: Any
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_CLAIM_LEASE": 20}
    token = queued(caller)
    OTPToken.objects.filter(pk=token.pk).update(
        delivery_status=DeliveryStatus.SENDING,
        delivery_started_at=timezone.now() - dt.timedelta(seconds=21),
    )
    run = run_now()
    assert (run.sent, run.come_back_in) == (1, None)
    stored = row(token)
    assert (stored.delivery_status, stored.delivery_envelope) == (DeliveryStatus.SENT, "")
    assert sent_to() == [e164(PHONES[0])]


# --- a run's time ----------------------------------------------------------------------------


def test_a_run_out_of_time_gives_the_rest_of_its_batch_back(
    caller: OTPClient, answers: dict[str, str], clock: Clock
) -> None:
    tokens = [queued(caller, phone) for phone in PHONES[:3]]
    answers[e164(PHONES[0])] = "slow"  # the first message uses up the run's time
    assert outbox.claim_wake()  # as a send's wake-up did
    run = outbox.deliver_due(started=clock.now, publish_retry=lambda retry: True, linger=0.0)
    # Past BATCH_SECONDS: the second message is not even offered.
    assert (run.sent, run.offered, run.more, run.come_back_in) == (1, 1, True, None)
    assert row(tokens[0]).delivery_status == DeliveryStatus.SENT
    for token in tokens[1:]:
        stored = row(token)
        # Back in the outbox as they were: queued, unclaimed, no attempt counted.
        assert (stored.delivery_status, stored.delivery_started_at) == (DeliveryStatus.QUEUED, None)
        assert stored.delivery_envelope == token.delivery_envelope
        assert (stored.delivery_attempts, stored.delivery_error) == (0, "")
    assert sent_to() == [e164(PHONES[0])]  # the second was never started
    assert not outbox.claim_wake()  # the flag stays: the next run is the task's own

    answers.clear()
    run = outbox.deliver_due(started=clock.now, publish_retry=lambda retry: True, linger=0.0)
    assert (run.sent, run.more) == (2, False)
    assert sent_to() == [e164(p) for p in PHONES[:3]]


def test_a_run_past_its_batch_time_claims_no_more_batches(
    caller: OTPClient, answers: dict[str, str], clock: Clock, settings: Any
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_BATCH_SIZE": 1}
    tokens = [queued(caller, phone) for phone in PHONES[:2]]
    started = clock.now
    clock.now += outbox.BATCH_SECONDS + 0.1
    run = outbox.deliver_due(started=started, publish_retry=lambda retry: True, linger=0.0)
    assert (run.sent, run.offered, run.more) == (0, 0, True)
    assert [row(t).delivery_status for t in tokens] == [DeliveryStatus.QUEUED] * 2


def test_a_run_that_stopped_for_time_wakes_another_at_once(
    caller: OTPClient, answers: dict[str, str], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "time", clock)
    for phone in PHONES[:2]:
        queued(caller, phone)
    answers[e164(PHONES[0])] = "slow"
    with mock.patch.object(tasks.deliver_due, "apply_async") as again:
        tasks.deliver_due.apply()
    assert again.call_count == 1 and again.call_args.kwargs.get("args", ()) == ()
    assert sent_to() == [e164(PHONES[0])]


def test_the_next_run_goes_to_the_configured_queue(
    caller: OTPClient,
    answers: dict[str, str],
    clock: Clock,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "time", clock)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "CELERY_QUEUE": "otp"}
    for phone in PHONES[:2]:
        queued(caller, phone)
    answers[e164(PHONES[0])] = "slow"
    with mock.patch.object(tasks.deliver_due, "apply_async") as again:
        tasks.deliver_due.apply()
    assert again.call_args.kwargs.get("queue") == "otp"


def test_a_run_out_of_time_leaves_a_half_open_backends_trial_to_the_next_run(
    caller: OTPClient, answers: dict[str, str], clock: Clock, settings: Any
) -> None:
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {"NAME": "fast", "BACKEND": f"{__name__}.ByNumber"},
            {"NAME": "main", "BACKEND": f"{__name__}.ByNumber"},
        ],
        "SMS_ROUTES": [
            {"PREFIXES": [e164(PHONES[0])], "BACKENDS": ["fast"]},
            {"PREFIXES": [e164(PHONES[1])], "BACKENDS": ["main"]},
        ],
    }
    first, second = queued(caller, PHONES[0]), queued(caller, PHONES[1])
    # "main" failed until its circuit opened; its cool-down is over: one trial may go.
    counter_cache().set("ciam_otp:circuit:main:open", time.time() - 1, 600)
    circuit.forget_local_copy()
    assert circuit.state("main") == circuit.HALF_OPEN
    answers[e164(PHONES[0])] = "slow"
    assert outbox.deliver_due(
        started=clock.now, publish_retry=lambda retry: True
    ).more  # "main" was not started: no time
    assert row(first).delivery_status == DeliveryStatus.SENT
    assert row(second).delivery_status == DeliveryStatus.QUEUED

    answers.clear()
    with mock.patch.object(tasks.deliver_otp, "apply_async"):
        run = outbox.deliver_due(started=clock.now, publish_retry=lambda retry: True, linger=0.0)
    assert run.sent == 1  # the next run makes the trial
    assert row(second).delivery_status == DeliveryStatus.SENT


# --- the wake-up flag ------------------------------------------------------------------------


def test_the_wake_flag_is_claimed_once_until_released_or_lapsed() -> None:
    assert outbox.claim_wake()
    assert not outbox.claim_wake()
    assert not outbox.claim_wake()
    outbox.release_wake()
    assert outbox.claim_wake()
    with time_machine.travel(time.time() + outbox.WAKE_SECONDS + 1):
        assert outbox.claim_wake()  # a lost run's flag runs out by itself


def test_a_follow_up_is_claimed_once_per_period() -> None:
    assert outbox.claim_follow_up(5.0)
    assert not outbox.claim_follow_up(5.0)
    assert not outbox.claim_follow_up(0.2)  # another period does not matter while one is set
    with time_machine.travel(time.time() + 6):
        assert outbox.claim_follow_up(0.2)
    with time_machine.travel(time.time() + 6.5):
        assert not outbox.claim_follow_up(0.2)  # at least a second, however short the wait
    with time_machine.travel(time.time() + 7.5):
        assert outbox.claim_follow_up(0.2)


def test_a_cache_that_fails_says_publish() -> None:
    broken = mock.Mock()
    broken.add.side_effect = ConnectionError("cache down")
    broken.delete.side_effect = ConnectionError("cache down")
    with mock.patch.object(counters.store, "counter_cache", return_value=broken):
        assert outbox.claim_wake()
        assert outbox.claim_wake()  # the breaker is open: not even asked
        assert not outbox.claim_follow_up(3)  # no follow-up chains (every send wakes a run)
        outbox.release_wake()  # does not raise
    assert broken.add.call_count == 1 and not broken.delete.called


def test_wake_publishes_only_while_no_run_is_pending(caller: OTPClient) -> None:
    token = queued(caller)
    with mock.patch.object(tasks.deliver_due, "apply_async") as publish:
        dispatch.wake(token)
        dispatch.wake(token)
    assert publish.call_count == 1
    options = publish.call_args.kwargs
    assert options["args"] == () and "expires" not in options
    assert str(token.pk) in options["argsrepr"]


def test_wake_releases_the_flag_when_the_broker_is_down(
    caller: OTPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = queued(caller)
    monkeypatch.setattr(tasks, "deliver_due", DeadBroker)
    with pytest.raises(TemporarilyUnavailable):
        dispatch.wake(token)
    with pytest.raises(TemporarilyUnavailable):
        dispatch.wake(token)  # the next send meets the broker too, not a stale flag
    assert outbox.claim_wake()


@pytest.mark.django_db(transaction=True)  # the wake-up runs at the send's own commit
def test_a_send_with_the_broker_down_is_503_and_leaves_nothing(
    api: Api, client_factory: Any, monkeypatch: pytest.MonkeyPatch, sms_outbox: list[Any]
) -> None:
    caller = client_factory(sms_quota=10)
    monkeypatch.setattr(tasks, "deliver_due", DeadBroker)
    response = api.send({"usage": "signup", "phone_number": PHONES[0]}, auth=caller)
    assert response.status_code == 503, response.content
    assert not OTPToken.objects.exists()
    assert Quota.objects.get().used == 0
    assert outbox.claim_wake()  # released: the next send tries the broker again


def test_a_token_committed_while_the_flag_is_held_is_taken_by_the_last_look(
    caller: OTPClient, answers: dict[str, str]
) -> None:
    first = queued(caller, PHONES[0])
    assert outbox.claim_wake()  # the first send's wake-up
    late: list[OTPToken] = []

    def release() -> None:
        # The outbox looked empty: the first message is out already.
        assert row(first).delivery_status == DeliveryStatus.SENT
        # A send commits now, before the flag is cleared: its wake-up publishes nothing.
        late.append(queued(caller, PHONES[1]))
        with mock.patch.object(tasks.deliver_due, "apply_async") as publish:
            dispatch.wake(late[0])
        assert not publish.called
        outbox.release_wake()

    run = outbox.deliver_due(
        started=time.monotonic(), publish_retry=lambda retry: True, release=release, linger=0.0
    )
    assert (run.sent, run.more) == (2, False)
    [token] = late
    assert (row(token).delivery_status, row(token).delivery_envelope) == (DeliveryStatus.SENT, "")
    assert sent_to() == [e164(PHONES[0]), e164(PHONES[1])]
    assert outbox.claim_wake()


def test_a_retry_that_cannot_be_published_stays_in_the_outbox_and_expires_with_its_code(
    caller: OTPClient, answers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker stays down: the code waits in the outbox; the sweep closes it when it expires."""
    with time_machine.travel(START, tick=False) as clock:
        token = queued(caller)
        envelope = token.delivery_envelope
        answers[e164(PHONES[0])] = "transient"
        monkeypatch.setattr(tasks, "deliver_otp", DeadBroker)
        tasks.deliver_due.apply()  # the broker failure is logged, not raised
        stored = row(token)
        assert (stored.delivery_status, stored.delivery_envelope) == (
            DeliveryStatus.QUEUED,
            envelope,
        )
        clock.shift(dt.timedelta(seconds=120))
        assert delivery.expire_stale_deliveries() == 1
    assert row(token).delivery_status == DeliveryStatus.EXPIRED
    assert Quota.objects.get().used == 0


def test_a_run_that_delivered_lingers_and_takes_what_came_meanwhile_in_the_same_run(
    caller: OTPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = queued(caller, PHONES[0])
    later: list[OTPToken] = []
    released: list[int] = []

    def sleep(seconds: float) -> None:
        assert seconds == outbox.LINGER_SECONDS
        assert not released  # the flag is still held: these sends publish nothing
        if not later:
            later.append(queued(caller, PHONES[1]))

    monkeypatch.setattr(outbox.time, "sleep", sleep)
    run = outbox.deliver_due(
        started=time.monotonic(),
        publish_retry=lambda retry: True,
        release=lambda: released.append(1),
    )
    assert run.sent == 2 and released == [1]
    assert {row(first).delivery_status, row(later[0]).delivery_status} == {DeliveryStatus.SENT}


def test_a_run_that_found_nothing_does_not_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox.time, "sleep", mock.Mock(side_effect=AssertionError("slept")))
    run = outbox.deliver_due(started=time.monotonic(), publish_retry=lambda retry: True)
    assert (run.sent, run.offered) == (0, 0)


def test_a_full_batch_calls_for_help_before_it_is_delivered(
    caller: OTPClient, settings: Any
) -> None:
    """A backlog: another run (another worker) takes the next batch, for slow providers."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_BATCH_SIZE": 2}
    for phone in PHONES[:5]:
        queued(caller, phone)
    calls: list[int] = []
    run = outbox.deliver_due(
        started=time.monotonic(),
        publish_retry=lambda retry: True,
        linger=0.0,
        call_for_help=lambda: calls.append(len(sent_to())),
    )
    assert run.sent == 5
    assert calls == [0, 2]  # for the two full batches, each before its messages went out


def test_the_task_publishes_its_call_for_help_to_the_configured_queue(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "CELERY_QUEUE": "otp"}
    with mock.patch.object(tasks.deliver_due, "apply_async") as publish:
        tasks._call_for_help()
    assert publish.call_args.kwargs["queue"] == "otp"
    assert publish.call_args.kwargs["args"] == ()
