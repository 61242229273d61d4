"""django_ciam_otp.metrics: every send, refusal and verification counted once, by fixed labels.

Deliveries and receipts are recorded by the delivery task and the receipts view
(their own tests); here the recording functions are called as they call them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_ciam_otp import metrics, send_otp, verify_otp
from django_ciam_otp.exceptions import (
    EmailIsUsed,
    InsufficientSMSQuota,
    InvalidAuthSource,
    InvalidOTP,
    InvalidOTPToken,
    InvalidRequest,
    MalformedPhoneNumber,
    OTPError,
    SMSRateLimitExceeded,
)
from django_ciam_otp.flows import counting
from django_ciam_otp.metrics.labels import CHANNELS, SEND_OUTCOMES, USAGES
from django_ciam_otp.models import TestRecipient
from tests.metrics import Delta, snapshot

ROOT = Path(__file__).resolve().parents[2]
SENDS = "ciam_otp_sends_total"
REFUSALS = "ciam_otp_send_refusals_total"
VERIFICATIONS = "ciam_otp_verifications_total"


@pytest.fixture
def delta() -> Delta:
    return Delta()


def refusal_code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(OTPError) as info:
        call(*args, **kwargs)
    return info.value.code


# --- sends ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_accepted_send_counts_once_by_channel_usage_and_outcome(
    api_client, sms_source, settings, delta, django_capture_on_commit_callbacks
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TEST_RECIPIENTS_ENABLED": True}
    TestRecipient.objects.create(channel="sms", recipient="+8613800000000", code="246810")
    client = api_client.client
    with django_capture_on_commit_callbacks(execute=True):
        send_otp(client, usage="signup", phone_number="13612345678")
        send_otp(client, usage="signup", email="someone@example.com")
        send_otp(client, usage="login", phone_number="13612345679", auth_source_id="SMS_SOURCE")
        send_otp(client, usage="reset_password", email="nobody@example.com")  # no account
        send_otp(client, usage="signup", phone_number="13800000000")  # the test recipient

    assert delta(SENDS, channel="sms", usage="signup", outcome="queued") == 1
    assert delta(SENDS, channel="email", usage="signup", outcome="queued") == 1
    assert delta(SENDS, channel="sms", usage="login", outcome="queued") == 1
    assert delta(SENDS, channel="email", usage="reset_password", outcome="suppressed") == 1
    assert delta(SENDS, channel="sms", usage="signup", outcome="test") == 1
    # and nothing else: no other send series, no refusal, no verification
    assert delta.total(SENDS) == 5
    assert delta.total(REFUSALS) == delta.total(VERIFICATIONS) == 0


@pytest.mark.django_db
def test_the_http_api_counts_through_the_same_flow(api, api_client, delta):
    assert (
        api.send({"usage": "signup", "phone_number": "13612345678"}, auth=api_client).status_code
        == 200
    )
    response = api.send({"usage": "signup", "phone_number": "12345"}, auth=api_client)
    assert response.json()["error"] == "malformed_phone_number"
    assert delta(SENDS, channel="sms", usage="signup", outcome="queued") == 1
    assert delta(REFUSALS, reason="malformed_phone_number") == 1


@pytest.mark.django_db
def test_each_refusal_counts_once_by_its_public_code(
    client_factory, sms_source, email_source, settings, delta
):
    """Refusals of every step: shape, recipient, auth source, is-used, rate limit, quota."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": ["1/m"]}
    client = client_factory(sms_quota=2).client
    get_user_model().objects.create(username="taken", email="taken@example.com")
    codes = [
        refusal_code(send_otp, client, usage="signup"),  # no recipient
        refusal_code(send_otp, client, usage="signup", phone_number="12345"),
        refusal_code(
            send_otp, client, usage="login", phone_number="13612345678", auth_source_id="NOPE"
        ),
        refusal_code(send_otp, client, usage="signup", email="taken@example.com"),
    ]
    send_otp(client, usage="signup", phone_number="13612345678")
    codes.append(refusal_code(send_otp, client, usage="signup", phone_number="13612345678"))
    send_otp(client, usage="signup", phone_number="13612345670")  # the quota's last message
    codes.append(refusal_code(send_otp, client, usage="signup", phone_number="13612345671"))

    assert codes == [
        InvalidRequest.code,
        MalformedPhoneNumber.code,
        InvalidAuthSource.code,
        EmailIsUsed.code,
        SMSRateLimitExceeded.code,
        InsufficientSMSQuota.code,
    ]
    for code in codes:
        assert delta(REFUSALS, reason=code) == 1, code
    assert delta.total(REFUSALS) == len(codes)
    assert delta(SENDS, channel="sms", usage="signup", outcome="queued") == 2


@pytest.mark.django_db
def test_the_caller_limit_429_is_a_refusal_of_the_flow(api, api_client, settings, delta):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "CLIENT_RATE_LIMITS": ["1/m"]}
    assert (
        api.send({"usage": "signup", "phone_number": "13612345678"}, auth=api_client).status_code
        == 200
    )
    response = api.send({"usage": "signup", "phone_number": "13612345679"}, auth=api_client)
    assert response.status_code == 429
    assert delta(REFUSALS, reason="rate_limit_exceeded") == 1


@pytest.mark.django_db
def test_an_unexpected_error_counts_as_server_error(api_client, monkeypatch, delta):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cache exploded")

    monkeypatch.setattr(counting, "count", broken)
    with pytest.raises(RuntimeError):
        send_otp(api_client.client, usage="signup", phone_number="13612345678")
    assert delta(REFUSALS, reason="server_error") == 1
    assert delta.total(REFUSALS) == 1 and delta.total(SENDS) == 0


# --- verifications -------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_verification_counts_once_by_outcome(
    api_client, sms_outbox, delta, django_capture_on_commit_callbacks
):
    client = api_client.client
    with django_capture_on_commit_callbacks(execute=True):
        sent = send_otp(client, usage="signup", phone_number="13612345678")
    code = sms_outbox[-1].code
    wrong = str((int(code) + 1) % 10**6).zfill(6)
    recipient = {"phone_number": "13612345678", "usage": "signup"}

    with pytest.raises(InvalidOTP):
        verify_otp(client, sent.otp_token, wrong, **recipient)
    with pytest.raises(InvalidRequest):
        verify_otp(client, sent.otp_token, "", **recipient)  # refused by the shape step
    with pytest.raises(InvalidOTPToken):
        verify_otp(client, "no-such-token", code, **recipient)
    verify_otp(client, sent.otp_token, code, **recipient)
    with pytest.raises(InvalidOTPToken):
        verify_otp(client, sent.otp_token, code, **recipient)  # used

    assert delta(VERIFICATIONS, outcome="verified") == 1
    assert delta(VERIFICATIONS, outcome="invalid_otp") == 1
    assert delta(VERIFICATIONS, outcome="invalid_request") == 1
    assert delta(VERIFICATIONS, outcome="invalid_otp_token") == 2
    assert delta.total(VERIFICATIONS) == 5


# --- deliveries and receipts, as delivery.py and the receipts view record them ----------


def test_delivery_outcomes_and_the_latency_of_sent_messages(delta):
    metrics.delivery("tencent", "sms", "sent", latency=0.3)
    metrics.delivery("tencent", "sms", "retry")
    metrics.delivery("tencent", "sms", "failed", latency=4.0)  # not a wait for a code
    metrics.delivery("twilio", "sms", "sent", latency=-0.01)  # clocks apart: counted as 0
    metrics.delivery("email", "email", "sent")

    deliveries = "ciam_otp_deliveries_total"
    assert delta(deliveries, backend="tencent", channel="sms", outcome="sent") == 1
    assert delta(deliveries, backend="tencent", channel="sms", outcome="retry") == 1
    assert delta(deliveries, backend="tencent", channel="sms", outcome="failed") == 1
    latency = "ciam_otp_delivery_latency_seconds"
    assert delta(f"{latency}_count", backend="tencent") == 1
    assert delta(f"{latency}_sum", backend="tencent") == pytest.approx(0.3)
    assert delta(f"{latency}_bucket", backend="tencent", le="0.25") == 0
    assert delta(f"{latency}_bucket", backend="tencent", le="0.5") == 1
    assert delta(f"{latency}_bucket", backend="twilio", le="0.05") == 1
    assert delta(f"{latency}_count", backend="email") == 0  # no latency given


def test_receipt_outcomes_and_the_latency_of_news_about_a_message(delta):
    metrics.receipt("tencent", "delivered", latency=4.0)
    metrics.receipt("tencent", "undelivered", latency=90.0)
    metrics.receipt("tencent", "unknown", latency=3.0)
    metrics.receipt("tencent", "refused")

    receipts = "ciam_otp_receipts_total"
    for outcome in ("delivered", "undelivered", "unknown", "refused"):
        assert delta(receipts, backend="tencent", outcome=outcome) == 1
    latency = "ciam_otp_receipt_latency_seconds"
    assert delta(f"{latency}_count", backend="tencent") == 2
    assert delta(f"{latency}_sum", backend="tencent") == pytest.approx(94.0)
    assert delta(f"{latency}_bucket", backend="tencent", le="5.0") == 1


def test_series_with_known_labels_exist_at_zero_before_any_event():
    """A scrape shows them from the start, so rate() sees the first event."""
    present = {(name, labels) for name, labels in snapshot()}
    for channel in CHANNELS:
        for usage in USAGES:
            for outcome in SEND_OUTCOMES:
                labels = frozenset({"channel": channel, "usage": usage, "outcome": outcome}.items())
                assert (SENDS, labels) in present
    for reason in ("malformed_phone_number", "insufficient_sms_quota", "server_error"):
        assert (REFUSALS, frozenset({"reason": reason}.items())) in present
    for outcome in ("verified", "invalid_otp", "too_many_attempts"):
        assert (VERIFICATIONS, frozenset({"outcome": outcome}.items())) in present


# --- off ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_nothing_is_recorded_with_metrics_off(api_client, settings, delta):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "METRICS": False}
    assert not metrics.enabled()
    send_otp(api_client.client, usage="signup", phone_number="13612345678")
    with pytest.raises(MalformedPhoneNumber):
        send_otp(api_client.client, usage="signup", phone_number="12345")
    metrics.delivery("tencent", "sms", "sent", latency=1.0)
    metrics.receipt("tencent", "delivered", latency=1.0)
    metrics.verification("verified")
    assert delta.changed() == {}

    settings.CIAM_OTP = {**settings.CIAM_OTP, "METRICS": True}  # setting_changed: decided again
    assert metrics.enabled()
    metrics.verification("verified")
    assert delta(VERIFICATIONS, outcome="verified") == 1


def test_nothing_is_recorded_without_prometheus_client(monkeypatch, delta):
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "prometheus_client", None)  # its import raises ImportError
        assert metrics.decide() is False
        metrics.send_accepted("sms", "signup", "queued")
        metrics.send_refused("malformed_phone_number")
        metrics.delivery("tencent", "sms", "sent", latency=1.0)
        metrics.receipt("tencent", "delivered", latency=1.0)
        metrics.verification("verified")
    assert metrics.decide() is True
    assert delta.changed() == {}


def test_with_metrics_off_prometheus_client_is_never_imported():
    """A fresh process: the app loads, a send is refused and counted, nothing imports it."""
    script = textwrap.dedent(
        """
        import os, sys
        import tests.settings as site
        site.CIAM_OTP = {**site.CIAM_OTP, "METRICS": False}
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        import django
        django.setup()
        from django_ciam_otp import flows, metrics
        from django_ciam_otp.exceptions import OTPError
        try:
            flows.send_otp(None, usage="signup", phone_number="12345")
        except Exception as error:
            print(type(error).__name__)
        metrics.verification("verified")
        print("enabled", metrics.enabled())
        print("imported", "prometheus_client" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-3:] == ["enabled False", "imported False", ""]
