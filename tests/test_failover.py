"""Failover across SMS backends (failover.py), through ``delivery.deliver`` with real tokens.

A message walks its route until one backend takes it: a transient failure or
a backend that cannot reach the number moves it on, a misconfigured backend
stops (breaker.py) and moves it on, the recipient's own failure ends it
without failover. Stopped backends and open circuits are skipped without a
call. One claim covers the whole walk, so one code is one message.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.core import mail

from django_ciam_otp import breaker, circuit, crypto, delivery, failover, flows, signals, sql
from django_ciam_otp.conf import DELIVERY_TASK_SOFT_TIME_LIMIT
from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota, TokenStatus
from tests.support import sms_backends
from tests.support.sms_backends import called

pytestmark = pytest.mark.django_db

PHONE = "13612345678"
E164 = "+86" + PHONE
SUPPORT = "tests.support.sms_backends"


def configure(settings: Any, *named: tuple[str, str], **extra: Any) -> None:
    """``SMS_BACKENDS`` of the scripted backends, as (name, class name) in failover order."""
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [{"NAME": name, "BACKEND": f"{SUPPORT}.{cls}"} for name, cls in named],
        **extra,
    }


def queued(client: Any, code: str = "123456", phone: str = PHONE) -> tuple[OTPToken, str]:
    """A stored token whose delivery is queued (on_commit does not run inside the test)."""
    token = flows.send_otp(client, usage="signup", phone_number=phone).token
    envelope = crypto.seal({"h": token.token_hash[:16], "c": code, "r": "+86" + phone})
    return token, envelope


def row(token: OTPToken) -> OTPToken:
    return OTPToken.objects.get(pk=token.pk)


def tried(token: OTPToken) -> list[str]:
    """The backends asked to carry ``token``'s message, in order."""
    return [call.backend for call in called() if call.token_id == token.pk]


@pytest.fixture(params=["returning", "read-first"])
def claim_path(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "read-first":  # as on MySQL or an old SQLite
        monkeypatch.setattr(sql, "update_returning_supported", lambda conn: False)
    return str(request.param)


@pytest.fixture
def failures() -> Iterator[list[str]]:
    reasons: list[str] = []

    def receiver(sender: Any, token: OTPToken, reason: str, **kwargs: Any) -> None:
        reasons.append(reason)

    signals.otp_delivery_failed.connect(receiver)
    yield reasons
    signals.otp_delivery_failed.disconnect(receiver)


@pytest.fixture
def caller(client_factory: Any) -> Any:
    return client_factory(sms_quota=10).client


# --- what moves a message on -------------------------------------------------------------------


def test_a_transient_failure_is_delivered_once_by_the_next_backend(
    settings, caller, sms_outbox, claim_path, failures
):
    configure(settings, ("first", "AlwaysTransient"), ("second", "Delivering"))
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None  # no retry: it went out
    assert tried(token) == ["first", "second"]
    [sms] = sms_outbox
    assert (sms.phone_number, sms.code) == (E164, "123456")
    stored = row(token)
    assert stored.delivery_status == DeliveryStatus.SENT
    assert stored.delivery_backend == "second"  # what receipts are matched by
    assert stored.provider_message_id == sms.message_id
    assert (stored.delivery_attempts, stored.delivery_error) == (1, "")
    assert stored.status == TokenStatus.PENDING
    assert Quota.objects.get().used == 1
    assert failures == []
    # A copy of the task (acks_late) finds it sent: no second message through anyone.
    assert delivery.deliver(token.pk, envelope) is None
    assert len(sms_outbox) == 1 and tried(token) == ["first", "second"]


def test_the_recipients_own_failure_ends_the_walk(settings, caller, sms_outbox, failures):
    configure(settings, ("first", "RecipientPermanent"), ("second", "Delivering"))
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert tried(token) == ["first"]  # the number does not exist for anyone
    assert sms_outbox == []
    stored = row(token)
    assert (stored.status, stored.delivery_status) == (TokenStatus.FAILED, DeliveryStatus.FAILED)
    assert (stored.delivery_backend, stored.delivery_error) == ("first", "number does not exist")
    assert Quota.objects.get().used == 0
    assert failures == ["number does not exist"]
    assert breaker.stopped("sms", "first") is None  # nothing wrong with the backend


def test_a_backend_that_cannot_reach_the_number_hands_it_on_and_goes_on(
    settings, caller, sms_outbox
):
    configure(settings, ("first", "NotHere"), ("second", "Delivering"), SMS_CIRCUIT={"FAILURES": 1})
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert tried(token) == ["first", "second"]
    assert row(token).delivery_backend == "second"
    assert len(sms_outbox) == 1
    # Neither stopped nor counted as failing: other numbers may still go through it.
    assert breaker.stopped("sms", "first") is None
    assert circuit.state("first") == circuit.CLOSED
    other, envelope = queued(caller, phone="13612345679")
    delivery.deliver(other.pk, envelope)
    assert tried(other) == ["first", "second"]


def test_a_number_no_backend_can_reach_fails_at_once(settings, caller, sms_outbox, failures):
    configure(settings, ("first", "NotHere"), ("second", "NotHere"))
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None  # not a retry: it would fail again
    assert tried(token) == ["first", "second"]
    stored = row(token)
    assert (stored.status, stored.delivery_status) == (TokenStatus.FAILED, DeliveryStatus.FAILED)
    assert stored.delivery_error == "first: region not enabled; second: region not enabled"
    assert stored.delivery_backend == "second"
    assert Quota.objects.get().used == 0
    assert len(failures) == 1


def test_a_misconfigured_backend_stops_and_the_next_one_delivers(
    settings, caller, sms_outbox, failures
):
    configure(settings, ("first", "Misconfigured"), ("second", "Delivering"))
    settings.ADMINS = [("Ops", "ops@example.com")]
    stops: list[breaker.Stop] = []
    signals.delivery_backend_stopped.connect(
        lambda sender, stop, **kw: stops.append(stop), weak=False, dispatch_uid="failover"
    )
    try:
        token, envelope = queued(caller)
        assert delivery.deliver(token.pk, envelope) is None
    finally:
        signals.delivery_backend_stopped.disconnect(dispatch_uid="failover")
    assert tried(token) == ["first", "second"]
    assert row(token).delivery_status == DeliveryStatus.SENT
    assert row(token).delivery_backend == "second"
    assert failures == []
    [stop] = stops
    assert (stop.channel, stop.name, stop.code) == ("sms", "first", "AuthFailure")
    assert len(mail.outbox) == 1
    breaker.forget_local_copy()  # every process knows it from the cache
    assert breaker.stopped("sms", "first") is not None
    assert breaker.stopped("sms", "second") is None
    assert breaker.current("sms") is None  # "second" still sends

    # The stopped backend is not asked again until the pause is over.
    later, envelope = queued(caller, phone="13612345679")
    assert delivery.deliver(later.pk, envelope) is None
    assert tried(later) == ["second"]
    assert len(sms_outbox) == 2


def test_with_every_backend_of_the_route_stopped_a_delivery_fails_without_a_call(
    settings, caller, sms_outbox, failures
):
    configure(settings, ("first", "Delivering"), ("second", "Delivering"))
    token, envelope = queued(caller)
    breaker.trip("sms", "tests", "AuthFailure", "bad key", name="first")
    breaker.trip("sms", "tests", "Arrears", "no balance", name="second")
    assert delivery.deliver(token.pk, envelope) is None
    assert called() == []
    stored = row(token)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert "stopped" in stored.delivery_error
    assert Quota.objects.get().used == 0
    assert len(failures) == 1


# --- every backend fails for now: the retry -------------------------------------------------------


def test_every_backend_failing_for_now_requeues_then_gives_up(
    settings, caller, sms_outbox, failures, claim_path
):
    configure(
        settings,
        ("first", "AlwaysTransient"),
        ("second", "AlwaysTransient"),
        DELIVERY_MAX_RETRIES=1,
    )
    token, envelope = queued(caller)
    later = delivery.deliver(token.pk, envelope, attempt=0)
    assert isinstance(later, delivery.RetryLater) and later.counts
    assert tried(token) == ["first", "second"]
    stored = row(token)
    assert stored.delivery_status == DeliveryStatus.QUEUED  # the claim is handed back
    assert stored.delivery_backend == ""  # the retry starts from the route's first again
    assert stored.delivery_error == "first: provider timed out; second: provider timed out"
    assert (stored.delivery_error_code, stored.delivery_attempts) == ("Timeout", 1)
    assert Quota.objects.get().used == 1
    assert failures == []

    assert delivery.deliver(token.pk, envelope, attempt=1) is None  # the last retry
    assert tried(token) == ["first", "second"] * 2
    stored = row(token)
    assert (stored.status, stored.delivery_status) == (TokenStatus.FAILED, DeliveryStatus.FAILED)
    assert stored.delivery_error.startswith("gave up after 2 attempts: first: provider timed out")
    assert stored.delivery_backend == "second"
    assert Quota.objects.get().used == 0
    assert len(failures) == 1
    assert sms_outbox == []


def test_one_backends_long_wait_does_not_hold_up_the_others(settings, caller):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {
                "NAME": "first",
                "BACKEND": f"{SUPPORT}.AlwaysTransient",
                "OPTIONS": {"retry_after": 7},
            },
            {
                "NAME": "second",
                "BACKEND": f"{SUPPORT}.AlwaysTransient",
                "OPTIONS": {"retry_after": 3},
            },
        ],
    }
    token, envelope = queued(caller)
    later = delivery.deliver(token.pk, envelope)
    assert isinstance(later, delivery.RetryLater)
    # At least the shorter wait: by then "second" can take it, whatever "first" asked.
    assert 3 <= later.countdown < 7


def test_the_retry_waits_as_long_as_every_backend_asked(settings, caller):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {"NAME": "first", "BACKEND": f"{SUPPORT}.AlwaysTransient"},
            {
                "NAME": "second",
                "BACKEND": f"{SUPPORT}.AlwaysTransient",
                "OPTIONS": {"retry_after": 9},
            },
        ],
    }
    token, envelope = queued(caller)
    later = delivery.deliver(token.pk, envelope)
    assert isinstance(later, delivery.RetryLater)
    assert later.countdown < 9  # "first" named no wait: the retry need not wait for "second"


@pytest.mark.parametrize("first", ["Unclear", "Interrupted", "Crashing"])
def test_after_an_unclear_failure_the_retry_goes_to_the_same_backend(
    settings, caller, sms_outbox, first
):
    """The provider may have taken it: handing it on could make it a second message."""
    configure(
        settings,
        ("first", first),
        ("second", "Delivering"),
        SMS_CIRCUIT={"FAILURES": 2, "WINDOW": 60, "COOL_DOWN": 30},
    )
    token, envelope = queued(caller)
    assert isinstance(delivery.deliver(token.pk, envelope), delivery.RetryLater)
    assert tried(token) == ["first"]  # not handed to "second"
    assert row(token).delivery_backend == "first"  # the retry starts with it again
    assert sms_outbox == []
    assert isinstance(delivery.deliver(token.pk, envelope, attempt=1), delivery.RetryLater)
    assert tried(token) == ["first", "first"]
    if first == "Interrupted":  # the task's own limit says nothing about the provider
        assert circuit.state("first") == circuit.CLOSED
        return
    assert circuit.state("first") == circuit.OPEN  # two failures: now it is skipped
    assert delivery.deliver(token.pk, envelope, attempt=2) is None
    assert tried(token) == ["first", "first", "second"]
    assert len(sms_outbox) == 1


def test_a_limit_on_the_number_waits_for_the_same_backend_and_spares_its_circuit(
    settings, caller, sms_outbox
):
    configure(
        settings,
        ("first", "NumberLimited"),
        ("second", "Delivering"),
        SMS_CIRCUIT={"FAILURES": 1, "WINDOW": 60, "COOL_DOWN": 30},
    )
    token, envelope = queued(caller)
    later = delivery.deliver(token.pk, envelope)
    assert isinstance(later, delivery.RetryLater) and later.countdown >= 31
    assert tried(token) == ["first"] and sms_outbox == []
    assert row(token).delivery_backend == "first"
    assert circuit.state("first") == circuit.CLOSED  # the provider is fine


def test_a_transient_failure_then_a_permanent_one_is_failed_not_retried(settings, caller, failures):
    configure(settings, ("first", "AlwaysTransient"), ("second", "RecipientPermanent"))
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert row(token).delivery_status == DeliveryStatus.FAILED
    assert Quota.objects.get().used == 0
    assert len(failures) == 1


def test_a_transient_failure_and_a_stopped_backend_leave_it_to_the_retry(settings, caller):
    configure(settings, ("first", "AlwaysTransient"), ("second", "Misconfigured"))
    token, envelope = queued(caller)
    assert isinstance(delivery.deliver(token.pk, envelope), delivery.RetryLater)
    assert row(token).delivery_status == DeliveryStatus.QUEUED
    assert breaker.stopped("sms", "second") is not None


# --- circuits -------------------------------------------------------------------------------------


def test_an_open_circuit_is_skipped_without_a_call(settings, caller, sms_outbox):
    configure(
        settings,
        ("first", "AlwaysTransient"),
        ("second", "Delivering"),
        SMS_CIRCUIT={"FAILURES": 2, "WINDOW": 60, "COOL_DOWN": 30},
    )
    first, envelope = queued(caller)
    delivery.deliver(first.pk, envelope)
    assert circuit.state("first") == circuit.CLOSED  # one failure of two
    second, envelope = queued(caller, phone="13612345679")
    delivery.deliver(second.pk, envelope)
    assert circuit.state("first") == circuit.OPEN

    circuit.forget_local_copy()  # another process: it reads the circuit from the cache
    third, envelope = queued(caller, phone="13612345670")
    assert delivery.deliver(third.pk, envelope) is None
    assert tried(third) == ["second"]
    assert row(third).delivery_backend == "second"
    assert len(sms_outbox) == 3


def test_with_every_circuit_open_the_first_backend_is_tried_anyway(settings, caller, sms_outbox):
    configure(
        settings,
        ("first", "AlwaysTransient"),
        ("second", "AlwaysTransient"),
        ("third", "Delivering"),
        SMS_CIRCUIT={"FAILURES": 1},
        SMS_ROUTES=[{"REGIONS": ["CN"], "BACKENDS": ["first", "second"]}],
    )
    token, envelope = queued(caller)
    assert isinstance(delivery.deliver(token.pk, envelope), delivery.RetryLater)
    assert circuit.state("first") == circuit.state("second") == circuit.OPEN
    assert isinstance(delivery.deliver(token.pk, envelope, attempt=1), delivery.RetryLater)
    assert tried(token) == ["first", "second", "first"]  # a trial, not giving up
    assert sms_outbox == []


def test_a_success_through_an_open_circuit_closes_it(settings, caller, sms_outbox):
    configure(
        settings, ("first", "Delivering"), ("second", "Delivering"), SMS_CIRCUIT={"FAILURES": 1}
    )
    circuit.record_failure("first")
    circuit.record_failure("second")
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert tried(token) == ["first"]
    assert circuit.state("first") == circuit.CLOSED
    circuit.forget_local_copy()
    assert (circuit.state("first"), circuit.state("second")) == (circuit.CLOSED, circuit.OPEN)


def test_a_stopped_backend_is_left_out_even_when_it_is_the_only_closed_circuit(
    settings, caller, sms_outbox
):
    configure(
        settings,
        ("first", "Delivering"),
        ("second", "Delivering"),
        SMS_CIRCUIT={"FAILURES": 1},
    )
    breaker.trip("sms", "tests", "AuthFailure", "bad key", name="first")
    circuit.record_failure("second")
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert tried(token) == ["second"]  # open, but the only one not stopped


# --- routes -------------------------------------------------------------------------------------


def test_the_route_chooses_the_backends_and_their_order(settings, caller, sms_outbox):
    configure(
        settings,
        ("intl", "Delivering"),
        ("cn_a", "AlwaysTransient"),
        ("cn_b", "Delivering"),
        SMS_ROUTES=[{"REGIONS": ["CN"], "BACKENDS": ["cn_a", "cn_b"]}],
    )
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert tried(token) == ["cn_a", "cn_b"]  # "intl" is first in the list, not in the route
    assert row(token).delivery_backend == "cn_b"


def test_a_route_never_fails_over_outside_itself(settings, caller, sms_outbox):
    configure(
        settings,
        ("cn", "AlwaysTransient"),
        ("intl", "Delivering"),
        SMS_ROUTES=[{"PREFIXES": ["+86"], "BACKENDS": ["cn"]}],
    )
    token, envelope = queued(caller)
    assert isinstance(delivery.deliver(token.pk, envelope), delivery.RetryLater)
    assert tried(token) == ["cn"]
    assert sms_outbox == []


def test_a_route_whose_backends_are_all_stopped_fails_while_others_send(
    settings, caller, sms_outbox, failures
):
    configure(
        settings,
        ("cn", "Delivering"),
        ("intl", "Delivering"),
        SMS_ROUTES=[{"REGIONS": ["CN"], "BACKENDS": ["cn"]}],
    )
    breaker.trip("sms", "tests", "AuthFailure", "bad key", name="cn")
    assert breaker.current("sms") is None  # "intl" runs: sends are accepted
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert called() == []
    assert row(token).delivery_status == DeliveryStatus.FAILED
    assert Quota.objects.get().used == 0


# --- the breaker, per backend -------------------------------------------------------------------


def test_sends_answer_503_only_once_every_backend_is_stopped(settings, api, api_client, sms_outbox):
    configure(settings, ("first", "Delivering"), ("second", "Delivering"))
    body = {"usage": "signup", "phone_number": PHONE}

    stop = breaker.trip("sms", "tests", "AuthFailure", "bad key")  # the first, by default
    assert stop.name == "first"
    assert breaker.current("sms") is None
    assert api.send(body, auth=api_client).status_code == 200
    assert [call.backend for call in called()] == ["second"]
    assert OTPToken.objects.get().delivery_backend == "second"

    breaker.trip("sms", "tests", "Arrears", "no balance", name="second")
    breaker.forget_local_copy()
    assert breaker.current("sms") is not None
    assert {s.name for s in breaker.active()} == {"first", "second"}
    response = api.send({**body, "phone_number": "13612345679"}, auth=api_client)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert OTPToken.objects.count() == 1  # nothing consumed
    assert len(called()) == 1

    breaker.reset("sms")
    assert breaker.active() == []
    response = api.send({**body, "phone_number": "13612345670"}, auth=api_client)
    assert response.status_code == 200
    assert [call.backend for call in called()] == ["second", "first"]
    assert len(sms_outbox) == 2


def test_an_email_stop_keeps_queued_email_from_its_backend(client_factory, mailoutbox, failures):
    caller = client_factory(email_quota=5).client
    token = flows.send_otp(caller, usage="signup", email="a@example.com").token
    envelope = crypto.seal({"h": token.token_hash[:16], "c": "123456", "r": "a@example.com"})
    breaker.trip("email", "smtp.example.com", "SMTPAuthenticationError", "bad password")
    assert delivery.deliver(token.pk, envelope) is None
    assert mailoutbox == []  # the provider is not even asked
    stored = row(token)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert "stopped" in stored.delivery_error
    assert Quota.objects.get().used == 0


def test_email_is_not_held_up_by_sms_stops_or_circuits(settings, client_factory, mailoutbox):
    configure(settings, ("first", "AlwaysTransient"), SMS_CIRCUIT={"FAILURES": 1})
    circuit.record_failure("first")
    breaker.trip("sms", "tests", "AuthFailure", "bad key")
    caller = client_factory().client
    token = flows.send_otp(caller, usage="signup", email="a@example.com").token
    envelope = crypto.seal({"h": token.token_hash[:16], "c": "123456", "r": "a@example.com"})
    assert delivery.deliver(token.pk, envelope) is None
    assert len(mailoutbox) == 1
    assert row(token).delivery_status == DeliveryStatus.SENT


# --- the walk's time budget ---------------------------------------------------------------------


class Clock:
    """``time.monotonic`` for failover.py: each look ``step`` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.ticks = itertools.count()
        self.step = step

    def monotonic(self) -> float:
        return next(self.ticks) * self.step


def test_a_walk_out_of_time_leaves_the_rest_of_the_route_to_the_retry(
    settings, caller, sms_outbox, monkeypatch
):
    configure(settings, ("first", "AlwaysTransient"), ("second", "Delivering"))
    monkeypatch.setattr(failover, "WALK_SECONDS", 7.5)
    monkeypatch.setattr(failover, "time", Clock(step=7.5))  # the first try used the budget
    token, envelope = queued(caller)
    later = delivery.deliver(token.pk, envelope)
    assert isinstance(later, delivery.RetryLater) and later.counts
    assert tried(token) == ["first"]
    stored = row(token)
    # Queued, and the retry starts with the backend the walk had no time for.
    assert (stored.delivery_status, stored.delivery_backend) == (DeliveryStatus.QUEUED, "second")
    assert stored.delivery_error == "provider timed out"
    assert sms_outbox == []


def test_a_backend_starts_only_if_its_worst_case_fits(settings, caller, monkeypatch):
    configure(settings, ("first", "AlwaysTransient"), ("second", "Delivering"))
    monkeypatch.setattr(failover, "WALK_SECONDS", 13.0)
    monkeypatch.setattr(failover, "time", Clock(step=4.0))  # 4 s into the walk
    monkeypatch.setattr(sms_backends.Delivering, "worst_case_seconds", lambda self: 10.0)
    token, envelope = queued(caller)
    assert isinstance(delivery.deliver(token.pk, envelope), delivery.RetryLater)
    assert tried(token) == ["first"]  # 4 + 10 > 13: "second" waits for the retry
    monkeypatch.setattr(sms_backends.Delivering, "worst_case_seconds", lambda self: 8.0)
    assert delivery.deliver(token.pk, envelope, attempt=1) is None  # starts with "second"
    assert tried(token) == ["first", "second"]


def test_the_retry_of_a_walk_cut_short_goes_on_where_it_stopped(
    settings, caller, sms_outbox, monkeypatch
):
    configure(
        settings, ("first", "AlwaysTransient"), ("second", "Delivering"), ("third", "Delivering")
    )
    monkeypatch.setattr(failover, "WALK_SECONDS", 7.5)
    monkeypatch.setattr(failover, "time", Clock(step=7.5))
    token, envelope = queued(caller)
    assert isinstance(delivery.deliver(token.pk, envelope), delivery.RetryLater)
    assert delivery.deliver(token.pk, envelope, attempt=1) is None
    assert tried(token) == ["first", "second"]  # not "first" again
    assert row(token).delivery_backend == "second"
    assert len(sms_outbox) == 1


def test_a_retry_after_every_backend_failed_starts_from_the_first_again(settings, caller):
    configure(settings, ("first", "AlwaysTransient"), ("second", "AlwaysTransient"))
    token, envelope = queued(caller)
    assert isinstance(delivery.deliver(token.pk, envelope), delivery.RetryLater)
    assert isinstance(delivery.deliver(token.pk, envelope, attempt=1), delivery.RetryLater)
    assert tried(token) == ["first", "second", "first", "second"]


def test_a_backend_whose_path_cannot_be_imported_stops_and_the_next_delivers(
    settings, caller, sms_outbox
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {"NAME": "gone", "BACKEND": "no_such_package.SMSBackend"},
            {"NAME": "second", "BACKEND": f"{SUPPORT}.Delivering"},
        ],
    }
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert row(token).delivery_backend == "second" and len(sms_outbox) == 1
    assert breaker.stopped("sms", "gone") is not None  # not retried as if transient


def test_a_malformed_backend_list_fails_the_delivery_instead_of_crashing(settings, caller):
    token, envelope = queued(caller)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKENDS": ["no_such_package.SMSBackend"]}
    assert delivery.deliver(token.pk, envelope) is None
    stored = row(token)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert "cannot be imported" in stored.delivery_error


def test_a_half_open_backend_gets_one_trial_across_processes(settings, caller, sms_outbox):
    configure(
        settings,
        ("first", "Delivering"),
        ("second", "Delivering"),
        SMS_CIRCUIT={"FAILURES": 1, "WINDOW": 60, "COOL_DOWN": 30},
    )
    circuit.record_failure("first")
    assert circuit.state("first") == circuit.OPEN
    with time_machine.travel(time.time() + 31, tick=False):
        assert circuit.state("first") == circuit.HALF_OPEN
        assert circuit.claim_trial("first")  # another process makes the trial now
        token, envelope = queued(caller)
        assert delivery.deliver(token.pk, envelope) is None
        assert tried(token) == ["second"]  # so this delivery leaves "first" alone
        circuit.forget_local_copy()
        assert not circuit.claim_trial("first")  # one trial, whichever process asks


def test_a_trial_is_claimed_only_by_the_delivery_that_reaches_the_backend(
    settings, caller, sms_outbox
):
    configure(
        settings,
        ("first", "Delivering"),
        ("second", "Delivering"),
        SMS_CIRCUIT={"FAILURES": 1, "WINDOW": 60, "COOL_DOWN": 30},
    )
    circuit.record_failure("second")
    with time_machine.travel(time.time() + 31, tick=False):
        token, envelope = queued(caller)
        assert delivery.deliver(token.pk, envelope) is None
        assert tried(token) == ["first"]  # sent before "second" came up
        assert circuit.claim_trial("second")  # its trial is still there for the next one


def test_a_walk_within_its_time_goes_on(settings, caller, sms_outbox, monkeypatch):
    configure(settings, ("first", "AlwaysTransient"), ("second", "Delivering"))
    monkeypatch.setattr(failover, "WALK_SECONDS", 13.0)
    monkeypatch.setattr(failover, "time", Clock(step=7.9))  # 7.9 + 5 (assumed) <= 13
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert tried(token) == ["first", "second"]


def test_the_first_backend_is_tried_however_long_the_walk_took(settings, caller, monkeypatch):
    configure(settings, ("first", "Delivering"), ("second", "Delivering"))
    monkeypatch.setattr(failover, "WALK_SECONDS", 0.0)
    token, envelope = queued(caller)
    assert delivery.deliver(token.pk, envelope) is None
    assert tried(token) == ["first"]


def test_the_budget_fits_inside_the_tasks_soft_time_limit():
    assert 0 < failover.WALK_SECONDS < DELIVERY_TASK_SOFT_TIME_LIMIT


# --- calls another process can see ----------------------------------------------------------------


def test_scripted_backends_log_their_calls_where_another_process_reads_them(
    settings, caller, tmp_path, monkeypatch
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {
                "NAME": "first",
                "BACKEND": f"{SUPPORT}.AlwaysTransient",
                "OPTIONS": {"calls_dir": str(tmp_path / "option")},
            },
            {"NAME": "second", "BACKEND": f"{SUPPORT}.Delivering"},
        ],
    }
    (tmp_path / "option").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv(sms_backends.CALLS_DIR_ENV, str(tmp_path / "env"))  # a worker's environment
    token, envelope = queued(caller)
    delivery.deliver(token.pk, envelope)
    assert sms_backends.read_calls(tmp_path / "option", "first") == [
        sms_backends.Call("first", token.pk, 0, E164)
    ]
    assert sms_backends.read_calls(tmp_path / "env", "second") == [
        sms_backends.Call("second", token.pk, 0, E164)
    ]
    assert sms_backends.read_calls(tmp_path / "env", "first") == []
