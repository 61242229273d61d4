"""``delivery.deliver``: the rules of one delivery, on both ways of claiming a token.

On PostgreSQL and SQLite >= 3.35 a delivery claims its token with one
``UPDATE … RETURNING`` and records the outcome with a second ``UPDATE``; only a
claim that fails reads the row to find out why. Other databases read first and
claim with a conditional ``UPDATE``. Every rule here (sent at most once, a live
claim waited out, nothing sent after the code's validity, failures give the
quota back, transient errors retried) must hold on both, so each test runs on
both (``claim_path``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ciam_otp import crypto, delivery, flows, signals, sql
from django_ciam_otp.backends.base import (
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.locmem import SMSBackend as LocmemBackend
from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota, TokenStatus

pytestmark = pytest.mark.django_db

PHONE = "13612345678"
START = dt.datetime(2025, 5, 1, 8, 0, tzinfo=dt.UTC)


class ScriptedBackend(LocmemBackend):
    """The locmem backend, after the failures queued in :attr:`script` (one per attempt)."""

    script: ClassVar[list[str]] = []

    def send(self, message: OTPMessage) -> str:
        step = self.script.pop(0) if self.script else "deliver"
        if step == "transient":
            raise TransientDeliveryError("throttled", provider_code="Throttled")
        if step == "permanent":
            raise PermanentDeliveryError("invalid number", provider_code="Invalid")
        if step == "crash":
            raise RuntimeError("provider SDK blew up")
        return super().send(message)


@pytest.fixture(params=["returning", "read-first"])
def claim_path(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "read-first":  # as on MySQL or an old SQLite
        monkeypatch.setattr(sql, "update_returning_supported", lambda conn: False)
    return str(request.param)


@pytest.fixture
def scripted(settings: Any) -> Iterator[list[str]]:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{__name__}.ScriptedBackend"}
    ScriptedBackend.script.clear()
    yield ScriptedBackend.script
    ScriptedBackend.script.clear()


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, token: OTPToken, reason: str, **kwargs: Any) -> None:
        # Any field a receiver reads is there (loaded on access if the claim left it out).
        seen.append({"token": token.pk, "reason": reason, "usage": token.usage})
        seen[-1]["recipient_hash"] = token.recipient_hash

    signals.otp_delivery_failed.connect(receiver)
    yield seen
    signals.otp_delivery_failed.disconnect(receiver)


def queued_token(client: Any, code: str = "123456") -> tuple[OTPToken, str]:
    """A stored token whose delivery is queued (on_commit does not run inside the test)."""
    token = flows.send_otp(client, usage="signup", phone_number=PHONE).token
    envelope = crypto.seal({"h": token.token_hash[:16], "c": code, "r": "+86" + PHONE})
    token.refresh_from_db()
    assert token.delivery_status == DeliveryStatus.QUEUED
    return token, envelope


def state(token: OTPToken) -> OTPToken:
    return OTPToken.objects.get(pk=token.pk)


# --- the common case ------------------------------------------------------------------------


def test_a_delivery_is_two_statements_claim_returning_then_sent(client_factory, sms_outbox):
    token, envelope = queued_token(client_factory(sms_quota=5).client)
    with CaptureQueriesContext(connection) as queries:
        assert delivery.deliver(token.pk, envelope) is None
    claim, sent = (q["sql"] for q in queries.captured_queries)
    assert claim.startswith("UPDATE") and "RETURNING" in claim
    assert sent.startswith("UPDATE") and "RETURNING" not in sent

    [sms] = sms_outbox
    assert (sms.phone_number, sms.code, sms.usage, sms.token_id) == (
        "+86" + PHONE,
        "123456",
        "signup",
        token.pk,
    )
    assert "123456" in sms.text and "1 minute" in sms.text  # rendered from the templates
    row = state(token)
    assert row.delivery_status == DeliveryStatus.SENT
    assert row.provider_message_id == sms.message_id
    assert row.delivery_attempts == 1
    assert row.delivery_error == ""
    assert row.sent_at is not None and row.delivery_started_at is not None
    assert row.status == TokenStatus.PENDING  # still verifiable
    assert Quota.objects.get().used == 1


def test_without_update_returning_the_row_is_read_first(
    client_factory, sms_outbox, claim_path, django_assert_num_queries
):
    token, envelope = queued_token(client_factory().client)
    expected = 2 if claim_path == "returning" else 3  # SELECT, claim, sent
    with django_assert_num_queries(expected):
        assert delivery.deliver(token.pk, envelope) is None
    assert [m.code for m in sms_outbox] == ["123456"]
    assert state(token).delivery_status == DeliveryStatus.SENT


def test_a_redelivered_task_finds_the_code_sent(client_factory, sms_outbox, claim_path):
    token, envelope = queued_token(client_factory().client)
    assert delivery.deliver(token.pk, envelope) is None
    assert delivery.deliver(token.pk, envelope) is None
    assert delivery.deliver(token.pk, envelope, attempt=3) is None
    assert len(sms_outbox) == 1
    assert state(token).delivery_attempts == 1


def test_a_live_claim_is_waited_out_and_a_stale_one_taken_over(
    client_factory, sms_outbox, settings, claim_path
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_CLAIM_LEASE": 20}
    token, envelope = queued_token(client_factory().client)
    now = timezone.now()
    OTPToken.objects.filter(pk=token.pk).update(
        delivery_status=DeliveryStatus.SENDING, delivery_started_at=now - dt.timedelta(seconds=5)
    )
    outcome = delivery.deliver(token.pk, envelope)
    assert isinstance(outcome, delivery.RetryLater)
    assert not outcome.counts
    assert 15 <= outcome.countdown <= 16.5
    assert sms_outbox == []
    assert state(token).delivery_status == DeliveryStatus.SENDING

    OTPToken.objects.filter(pk=token.pk).update(delivery_started_at=now - dt.timedelta(seconds=21))
    assert delivery.deliver(token.pk, envelope) is None
    assert len(sms_outbox) == 1
    assert state(token).delivery_status == DeliveryStatus.SENT


def test_a_missing_token_is_nothing_to_do(db, sms_outbox, claim_path):
    envelope = crypto.seal({"h": "0" * 16, "c": "123456", "r": "+86" + PHONE})
    assert delivery.deliver(123456, envelope) is None
    assert sms_outbox == []


# --- nothing is sent once the code is no longer usable ----------------------------------------


def test_an_expired_code_is_not_sent_and_its_quota_comes_back(
    client_factory, sms_outbox, claim_path
):
    with time_machine.travel(START, tick=False) as clock:
        token, envelope = queued_token(client_factory(sms_quota=5).client)
        assert Quota.objects.get().used == 1
        clock.shift(dt.timedelta(seconds=60))  # the code's validity, exactly
        assert delivery.deliver(token.pk, envelope) is None
    assert sms_outbox == []
    row = state(token)
    assert row.delivery_status == DeliveryStatus.EXPIRED
    assert row.delivery_error == "not sent: code no longer usable"
    assert Quota.objects.get().used == 0
    assert not row.quota_consumed


@pytest.mark.parametrize("status", [TokenStatus.SUPERSEDED, TokenStatus.LOCKED])
def test_a_token_no_longer_pending_is_not_sent(client_factory, sms_outbox, claim_path, status):
    token, envelope = queued_token(client_factory(sms_quota=5).client)
    OTPToken.objects.filter(pk=token.pk).update(status=status)
    assert delivery.deliver(token.pk, envelope) is None
    assert sms_outbox == []
    assert state(token).delivery_status == DeliveryStatus.EXPIRED
    assert Quota.objects.get().used == 0


@pytest.mark.parametrize("finished", [DeliveryStatus.FAILED, DeliveryStatus.EXPIRED])
def test_a_finished_delivery_is_left_alone(client_factory, sms_outbox, claim_path, finished):
    token, envelope = queued_token(client_factory(sms_quota=5).client)
    OTPToken.objects.filter(pk=token.pk).update(delivery_status=finished)
    assert delivery.deliver(token.pk, envelope) is None
    assert sms_outbox == []
    assert state(token).delivery_status == finished
    assert Quota.objects.get().used == 1  # whoever finished it settled the quota


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["garbage", "another token's"])
def test_an_envelope_that_does_not_open_fails_the_token(
    client_factory, sms_outbox, claim_path, failures, bad
):
    token, envelope = queued_token(client_factory(sms_quota=5).client)
    if bad == "garbage":
        envelope = "not-an-envelope"
    else:
        envelope = crypto.seal({"h": "f" * 16, "c": "123456", "r": "+86" + PHONE})
    assert delivery.deliver(token.pk, envelope) is None
    assert sms_outbox == []
    row = state(token)
    assert (row.delivery_status, row.status) == (DeliveryStatus.FAILED, TokenStatus.FAILED)
    assert "envelope could not be opened" in row.delivery_error
    assert Quota.objects.get().used == 0
    assert [f["token"] for f in failures] == [token.pk]


def test_a_permanent_error_fails_at_once_and_gives_the_quota_back(
    client_factory, scripted, sms_outbox, claim_path, failures
):
    token, envelope = queued_token(client_factory(sms_quota=5).client)
    scripted.append("permanent")
    assert delivery.deliver(token.pk, envelope) is None
    assert sms_outbox == []
    row = state(token)
    assert (row.delivery_status, row.status) == (DeliveryStatus.FAILED, TokenStatus.FAILED)
    assert row.delivery_error == "invalid number"
    assert Quota.objects.get().used == 0
    assert failures == [
        {
            "token": token.pk,
            "reason": "invalid number",
            "usage": "signup",
            "recipient_hash": token.recipient_hash,
        }
    ]
    assert delivery.deliver(token.pk, envelope) is None  # a copy of the task: nothing more
    assert Quota.objects.get().used == 0


@pytest.mark.parametrize("error", ["transient", "crash"])
def test_a_transient_error_is_retried_and_then_delivered_once(
    client_factory, scripted, sms_outbox, claim_path, error
):
    token, envelope = queued_token(client_factory(sms_quota=5).client)
    scripted.extend([error, error])
    for attempt in range(2):
        outcome = delivery.deliver(token.pk, envelope, attempt=attempt)
        assert isinstance(outcome, delivery.RetryLater)
        assert outcome.counts
        assert 0 <= outcome.countdown <= 2**attempt
        row = state(token)
        assert row.delivery_status == DeliveryStatus.QUEUED  # the claim is handed back
        assert row.delivery_attempts == attempt + 1
        assert row.delivery_error == ("throttled" if error == "transient" else "RuntimeError")
    assert delivery.deliver(token.pk, envelope, attempt=2) is None
    row = state(token)
    assert (row.delivery_status, row.delivery_attempts, row.delivery_error) == (
        DeliveryStatus.SENT,
        3,
        "",
    )
    assert len(sms_outbox) == 1
    assert Quota.objects.get().used == 1


def test_transient_errors_give_up_after_the_last_retry(
    client_factory, scripted, sms_outbox, settings, claim_path, failures
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_MAX_RETRIES": 1}
    token, envelope = queued_token(client_factory(sms_quota=5).client)
    scripted.extend(["transient", "transient"])
    assert isinstance(delivery.deliver(token.pk, envelope, attempt=0), delivery.RetryLater)
    assert delivery.deliver(token.pk, envelope, attempt=1) is None
    row = state(token)
    assert row.delivery_status == DeliveryStatus.FAILED
    assert row.delivery_error == "gave up after 2 attempts: throttled"
    assert Quota.objects.get().used == 0
    assert len(failures) == 1
    assert sms_outbox == []
