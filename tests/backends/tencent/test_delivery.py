"""The Tencent backend inside the delivery rules (``delivery.deliver``), against the fake.

* The 30-second limit: the real backoff waits out Tencent's window, and no
  second SendSms reaches Tencent inside it.
* After an unclear try, the next one asks Tencent first and never sends the
  code twice when Tencent already took it.
* A misconfigured account stops the line for every worker: the second worker
  never reaches Tencent, its token fails with its quota back, sends answer 503.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.core import mail

from django_ciam_otp import breaker, crypto, delivery, send_otp
from django_ciam_otp.backends.sms.tencent import sdk
from django_ciam_otp.exceptions import TemporarilyUnavailable
from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota, TokenStatus

from .fake import (
    CODE,
    SERIAL,
    FakeTencent,
    api_error,
    ok,
    pull_status,
    pulled,
    sequence,
    status_error,
)

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
THIRTY = "LimitExceeded.PhoneNumberThirtySecondLimit"


@pytest.fixture
def tencent(fake: FakeTencent, configure: Callable[..., None], settings: Any) -> FakeTencent:
    configure(ENDPOINT=fake.url)
    settings.ADMINS = [("Ops", "ops@example.com")]
    return fake


def queued(client: Any, phone: str = "13711112222") -> tuple[OTPToken, str]:
    """A token whose delivery is queued (on_commit does not run inside the test)."""
    token = send_otp(client, usage="signup", phone_number=phone).token
    envelope = crypto.seal({"h": token.token_hash[:16], "c": CODE, "r": "+86" + phone})
    return token, envelope


def row(token: OTPToken) -> OTPToken:
    return OTPToken.objects.get(pk=token.pk)


# --- the 30-second limit ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_the_thirty_second_limit_is_waited_out_with_the_real_backoff(
    client_factory: Any, tencent: FakeTencent, seed: int
) -> None:
    random.seed(seed)  # the real full-jitter backoff, several draws
    tencent.reply = sequence(status_error(THIRTY, "same content within 30 s"), ok)
    with time_machine.travel(START, tick=False) as clock:
        token, envelope = queued(client_factory(sms_quota=5).client)

        outcome = delivery.deliver(token.pk, envelope, attempt=0)

        assert outcome is not None and outcome.counts
        assert outcome.countdown >= 31  # backoff(0) alone is at most 1 s
        assert (row(token).delivery_status, row(token).delivery_error_code) == (
            DeliveryStatus.QUEUED,
            THIRTY,
        )
        # The worker runs the retry when the countdown is over (Celery holds it till then).
        clock.shift(dt.timedelta(seconds=outcome.countdown))
        assert delivery.deliver(token.pk, envelope, attempt=1) is None

    first, second = tencent.sends
    assert second.at - first.at >= 31  # no second SendSms inside Tencent's window
    sent = row(token)
    assert (sent.delivery_status, sent.provider_message_id) == (DeliveryStatus.SENT, SERIAL)
    assert (sent.fee, sent.billed_region) == (1, "CN")
    assert tencent.pulls == []


def test_a_code_too_short_lived_for_the_window_fails_at_once(
    client_factory: Any, tencent: FakeTencent
) -> None:
    tencent.reply = status_error(THIRTY, "same content within 30 s")
    with time_machine.travel(START, tick=False) as clock:
        token, envelope = queued(client_factory(sms_quota=5).client)
        clock.shift(dt.timedelta(seconds=40))  # 20 s of validity left: 31 s is too long

        assert delivery.deliver(token.pk, envelope, attempt=0) is None

    assert row(token).delivery_status == DeliveryStatus.FAILED
    assert Quota.objects.get().used == 0
    assert len(tencent.sends) == 1


# --- never twice after an unclear try --------------------------------------------------------


def read_timeout(tencent: FakeTencent, configure: Callable[..., None]) -> None:
    configure(ENDPOINT=tencent.url, TIMEOUT=0.5)
    tencent.reply = "hang"


def test_a_message_tencent_took_before_a_timeout_is_not_sent_again(
    client_factory: Any, tencent: FakeTencent, configure: Callable[..., None]
) -> None:
    token, envelope = queued(client_factory(sms_quota=5).client)
    read_timeout(tencent, configure)
    outcome = delivery.deliver(token.pk, envelope, attempt=0)
    assert outcome is not None
    assert row(token).delivery_error_code == "ClientNetworkError.ReadTimeout"

    # Tencent did take it: its status shows our SessionContext.
    tencent.pull_reply = pulled(pull_status(session_context=f"otp_token:{token.pk}"))
    tencent.reply = ok
    assert delivery.deliver(token.pk, envelope, attempt=1) is None

    assert len(tencent.sends) == 1  # the code went out once
    assert len(tencent.pulls) == 1
    sent = row(token)
    assert (sent.delivery_status, sent.provider_message_id) == (DeliveryStatus.SENT, SERIAL)


def test_when_the_status_is_not_visible_yet_the_thirty_second_refusal_says_sent(
    client_factory: Any, tencent: FakeTencent, configure: Callable[..., None]
) -> None:
    token, envelope = queued(client_factory(sms_quota=5).client)
    read_timeout(tencent, configure)
    assert delivery.deliver(token.pk, envelope, attempt=0) is not None

    tencent.pull_reply = pulled()  # the carrier has not reported yet
    tencent.reply = status_error(THIRTY, "same content within 30 s")
    assert delivery.deliver(token.pk, envelope, attempt=1) is None

    sent = row(token)
    assert sent.delivery_status == DeliveryStatus.SENT
    assert sent.provider_message_id.startswith("tencent-accepted-earlier")
    assert len(tencent.sends) == 2  # the resend was refused; nothing went out twice
    assert Quota.objects.get().used == 1


# --- a misconfigured account stops the line, for every worker ----------------------------------

MISCONFIGURED = [
    api_error("AuthFailure.SecretIdNotFound", "The SecretId is not found"),
    api_error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verify fail"),
    api_error("InternalError.RequestTimeException", "request time exception"),
    api_error("UnauthorizedOperation.RequestIpNotInWhitelist", "ip not in whitelist"),
    status_error("FailedOperation.InsufficientBalanceInSmsPackage", "insufficient balance"),
    status_error("FailedOperation.TemplateIncorrectOrUnapproved", "template unapproved"),
    status_error("FailedOperation.SignatureIncorrectOrUnapproved", "signature unapproved"),
]


@pytest.mark.parametrize("answer", MISCONFIGURED)
def test_the_second_worker_never_reaches_tencent(
    client_factory: Any, tencent: FakeTencent, answer: Any
) -> None:
    caller = client_factory(sms_quota=10).client
    first, first_envelope = queued(caller, "13711112222")
    second, second_envelope = queued(caller, "13711113333")
    tencent.reply = answer

    # Worker A.
    assert delivery.deliver(first.pk, first_envelope) is None  # never retried
    assert row(first).status == TokenStatus.FAILED
    code = row(first).delivery_error.split()[2]  # "Tencent SMS <code> (request ...)"
    assert len(mail.outbox) == 1 and code in mail.outbox[0].subject

    # Worker B: its own process memory and SDK client; only the cache is shared.
    breaker.forget_local_copy()
    sdk.forget_clients()
    assert delivery.deliver(second.pk, second_envelope) is None

    assert len(tencent.sends) == 1  # B never called Tencent
    assert row(second).status == TokenStatus.FAILED
    assert "stopped" in row(second).delivery_error
    assert Quota.objects.get().used == 0  # both quotas given back
    with pytest.raises(TemporarilyUnavailable):  # and /otp/send answers 503
        send_otp(caller, usage="signup", phone_number="13711114444")


@pytest.mark.parametrize(
    "overrides",
    [{"ENDPOINT": "ftp://sms.example.com"}, {"REGION": None}, {"TEMPLATE_IDS": {"login": "1"}}],
)
def test_settings_nothing_can_be_sent_with_stop_the_line_unretried(
    client_factory: Any, tencent: FakeTencent, configure: Callable[..., None], overrides: Any
) -> None:
    token, envelope = queued(client_factory(sms_quota=5).client)
    configure(**{"ENDPOINT": tencent.url, **overrides})

    assert delivery.deliver(token.pk, envelope) is None  # ImproperlyConfigured is not retried

    assert row(token).status == TokenStatus.FAILED
    assert breaker.current("sms") is not None
    assert tencent.received == []
