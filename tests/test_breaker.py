"""A backend that cannot send anything stops its channel's line (django_ciam_otp.breaker)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp import breaker, crypto, delivery, send_otp, signals
from django_ciam_otp.backends.base import (
    Accepted,
    BackendMisconfigured,
    OTPMessage,
    TransientDeliveryError,
)
from django_ciam_otp.exceptions import TemporarilyUnavailable
from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota, TokenStatus

pytestmark = pytest.mark.django_db

PHONE = "13612345678"


class Scripted:
    """An SMS backend whose answers the test sets; records what it was asked."""

    answers: list[Any] = []
    calls: list[OTPMessage] = []

    def __init__(self, **kwargs: Any) -> None:
        pass

    def send(self, message: OTPMessage) -> Any:
        Scripted.calls.append(message)
        answer = Scripted.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


@pytest.fixture
def scripted(settings: Any) -> type[Scripted]:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": "tests.test_breaker.Scripted"}
    settings.ADMINS = [("Ops", "ops@example.com")]
    Scripted.answers, Scripted.calls = [], []
    return Scripted


def queued(client: Any) -> tuple[OTPToken, str]:
    """A token queued for delivery (the on-commit publish does not run in the test)."""
    token = send_otp(client, usage="signup", phone_number=PHONE).token
    envelope = crypto.seal({"h": token.token_hash[:16], "c": "123456", "r": "+86" + PHONE})
    return token, envelope


@pytest.mark.parametrize(
    "failure",
    [
        BackendMisconfigured("AuthFailure.SecretIdNotFound", provider_code="AuthFailure"),
        ImproperlyConfigured("TENCENT_SMS ENDPOINT has an unknown scheme"),
    ],
)
def test_a_misconfigured_backend_stops_the_line(client_factory, scripted, failure):
    caller = client_factory(sms_quota=10).client
    stops: list[Any] = []
    signals.delivery_backend_stopped.connect(
        lambda sender, stop, **kw: stops.append(stop), weak=False, dispatch_uid="t"
    )
    try:
        first, envelope = queued(caller)
        scripted.answers = [failure]
        assert delivery.deliver(first.pk, envelope) is None  # never retried
    finally:
        signals.delivery_backend_stopped.disconnect(dispatch_uid="t")
    first.refresh_from_db()
    assert (first.status, first.delivery_status) == (TokenStatus.FAILED, DeliveryStatus.FAILED)
    assert Quota.objects.get().used == 0  # given back
    assert len(stops) == 1 and stops[0].channel == "sms"
    assert len(mail.outbox) == 1
    assert "delivery through test_breaker stopped" in mail.outbox[0].subject

    # Every process sees it: sends answer 503 and consume nothing.
    breaker.forget_local_copy()
    with pytest.raises(TemporarilyUnavailable):
        send_otp(caller, usage="signup", phone_number="13612345679")
    assert OTPToken.objects.count() == 1
    # Email is another channel and goes on.
    send_otp(caller, usage="signup", email="a@example.com")


def test_queued_deliveries_fail_without_asking_the_provider(client_factory, scripted):
    caller = client_factory(sms_quota=10).client
    token, envelope = queued(caller)
    breaker.trip("sms", "tests.Scripted", "FailedOperation.InsufficientBalance", "arrears")
    assert delivery.deliver(token.pk, envelope) is None
    assert scripted.calls == []
    token.refresh_from_db()
    assert token.delivery_status == DeliveryStatus.FAILED
    assert "stopped" in token.delivery_error
    assert Quota.objects.get().used == 0


def test_admins_are_mailed_once_per_code_a_day(scripted):
    for _ in range(3):
        breaker.trip("sms", "tests.Scripted", "AuthFailure", "bad key")
    breaker.trip("sms", "tests.Scripted", "FailedOperation.TemplateUnapproved", "template")
    assert [m.subject.split(": ")[-1] for m in mail.outbox] == [
        "AuthFailure",
        "FailedOperation.TemplateUnapproved",
    ]


def test_the_stop_ends_after_the_pause_or_when_resumed(client_factory, scripted, settings):
    caller = client_factory().client
    breaker.trip("sms", "tests.Scripted", "AuthFailure", "bad key")
    assert breaker.current("sms") is not None
    breaker.reset("sms")
    assert breaker.current("sms") is None
    settings.CIAM_OTP = {**settings.CIAM_OTP, "BACKEND_PAUSE_SECONDS": 1}
    stop = breaker.trip("sms", "tests.Scripted", "AuthFailure", "bad key")
    import time_machine

    with time_machine.travel(stop.until + 1, tick=False):
        assert breaker.current("sms") is None
        scripted.answers = ["serial-1"]
        token, envelope = queued(caller)
        delivery.deliver(token.pk, envelope)
    token.refresh_from_db()
    assert token.delivery_status == DeliveryStatus.SENT


def test_a_provider_window_is_waited_out_and_the_next_try_knows_why(client_factory, scripted):
    caller = client_factory().client
    token, envelope = queued(caller)
    scripted.answers = [
        TransientDeliveryError(
            "30-second limit",
            provider_code="LimitExceeded.PhoneNumberThirtySecondLimit",
            retry_after=31,
        ),
        Accepted("serial-2", fee=1, region="CN"),
    ]
    later = delivery.deliver(token.pk, envelope)
    assert later is not None and later.countdown >= 31
    token.refresh_from_db()
    assert token.delivery_error_code == "LimitExceeded.PhoneNumberThirtySecondLimit"
    assert delivery.deliver(token.pk, envelope, attempt=1) is None
    second = scripted.calls[1]
    assert (second.attempt, second.previous_error) == (
        1,
        "LimitExceeded.PhoneNumberThirtySecondLimit",
    )
    token.refresh_from_db()
    assert (token.provider_message_id, token.fee, token.billed_region) == ("serial-2", 1, "CN")
    assert token.delivery_error_code == ""


def test_a_window_longer_than_the_code_gives_up(client_factory, scripted):
    token, envelope = queued(client_factory(sms_quota=5).client)
    scripted.answers = [TransientDeliveryError("daily policy", retry_after=3600)]
    assert delivery.deliver(token.pk, envelope) is None
    token.refresh_from_db()
    assert token.delivery_status == DeliveryStatus.FAILED
    assert Quota.objects.get().used == 0


def test_inline_delivery_does_not_burn_its_retries_inside_a_provider_window(
    client_factory, scripted
):
    token, envelope = queued(client_factory(sms_quota=5).client)
    scripted.answers = [TransientDeliveryError("30-second limit", retry_after=31)]
    delivery.deliver_now(token.pk, envelope)
    assert len(scripted.calls) == 1  # not DELIVERY_MAX_RETRIES calls within the window
    token.refresh_from_db()
    assert token.delivery_status == DeliveryStatus.FAILED
    assert "use Celery" in token.delivery_error
    assert Quota.objects.get().used == 0
