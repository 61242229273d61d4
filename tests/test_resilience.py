"""The rules behind the production failure behaviour, without servers.

``tests/integration`` shows them end to end against PostgreSQL, Redis and a
real worker; these pin the same rules down in the fast suite: a redelivered
task waits out a live claim instead of dropping or duplicating the delivery,
undelivered expired codes give their quota back, a burst of refused sends
does not inflate the longer rate windows, and a dead cache is skipped rather
than waited for on every counter.
"""

from __future__ import annotations

import datetime as dt
import io
from unittest import mock

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from django_ciam_otp import counters, crypto, delivery, flows, ratelimits, tasks
from django_ciam_otp.counters import CacheStore, CountPlan
from django_ciam_otp.exceptions import SMSRateLimitExceeded
from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota

pytestmark = pytest.mark.django_db

PHONE = "13612345678"
START = dt.datetime(2025, 5, 1, 8, 0, tzinfo=dt.UTC)


def queued_token(client, code: str = "123456") -> tuple[OTPToken, str]:
    """A token whose delivery is queued (on_commit does not run inside the test's transaction)."""
    result = flows.send_otp(client, usage="signup", phone_number=PHONE)
    token = result.token
    envelope = crypto.seal({"h": token.token_hash[:16], "c": code, "r": "+86" + PHONE})
    token.refresh_from_db()
    assert token.delivery_status == DeliveryStatus.QUEUED
    return token, envelope


# --- a worker's claim ------------------------------------------------------------------


def test_redelivered_task_waits_out_a_live_claim_then_delivers_once(
    client_factory, sms_outbox, settings
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_CLAIM_LEASE": 20}
    token, envelope = queued_token(client_factory().client)
    now = timezone.now()
    # Another worker claimed it 5 s ago and may still be talking to the provider.
    OTPToken.objects.filter(pk=token.pk).update(
        delivery_status=DeliveryStatus.SENDING, delivery_started_at=now - dt.timedelta(seconds=5)
    )
    outcome = delivery.deliver(token.pk, envelope)
    assert isinstance(outcome, delivery.RetryLater)
    assert not outcome.counts  # waiting is not a failed attempt
    assert 15 <= outcome.countdown <= 16.5  # the rest of the lease, plus jitter
    assert sms_outbox == []

    # That worker died: once its claim has run out, this run sends.
    OTPToken.objects.filter(pk=token.pk).update(delivery_started_at=now - dt.timedelta(seconds=21))
    assert delivery.deliver(token.pk, envelope) is None
    assert [m.code for m in sms_outbox] == ["123456"]
    assert OTPToken.objects.get(pk=token.pk).delivery_status == DeliveryStatus.SENT

    # A third copy of the task finds it sent.
    assert delivery.deliver(token.pk, envelope) is None
    assert len(sms_outbox) == 1


def test_eager_task_does_not_spin_on_a_live_claim(client_factory, sms_outbox):
    token, envelope = queued_token(client_factory().client)
    OTPToken.objects.filter(pk=token.pk).update(
        delivery_status=DeliveryStatus.SENDING, delivery_started_at=timezone.now()
    )
    with mock.patch.object(delivery, "deliver", wraps=delivery.deliver) as deliver:
        tasks.deliver_otp.apply(args=(token.pk, envelope))
    assert deliver.call_count == 1
    assert sms_outbox == []


# --- codes that expired before a worker sent them ---------------------------------------------


def test_undelivered_expired_codes_give_their_quota_back(client_factory, sms_outbox):
    with time_machine.travel(START, tick=False) as clock:
        client = client_factory(sms_quota=5).client
        token, _ = queued_token(client)
        assert Quota.objects.get().used == 1
        assert delivery.expire_stale_deliveries() == 0  # still valid: a worker may come

        clock.shift(dt.timedelta(seconds=61))
        assert delivery.expire_stale_deliveries() == 1
        token.refresh_from_db()
        assert token.delivery_status == DeliveryStatus.EXPIRED
        assert Quota.objects.get().used == 0
        assert delivery.expire_stale_deliveries() == 0  # at most once
        assert Quota.objects.get().used == 0
    assert sms_outbox == []


def test_a_claim_in_progress_is_not_expired_until_its_lease_runs_out(client_factory):
    with time_machine.travel(START, tick=False) as clock:
        client = client_factory(sms_quota=5).client
        token, _ = queued_token(client)
        clock.shift(dt.timedelta(seconds=59))
        OTPToken.objects.filter(pk=token.pk).update(
            delivery_status=DeliveryStatus.SENDING, delivery_started_at=timezone.now()
        )
        clock.shift(dt.timedelta(seconds=5))  # code expired, claim 5 s old
        assert delivery.expire_stale_deliveries() == 0
        clock.shift(dt.timedelta(seconds=30))
        assert delivery.expire_stale_deliveries() == 1
        assert Quota.objects.get().used == 0


def test_purge_task_sweeps_then_keeps_the_token_log_for_its_retention(client_factory, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TOKEN_RETENTION": 3600}
    with time_machine.travel(START, tick=False) as clock:
        client = client_factory(sms_quota=5).client
        queued_token(client)
        clock.shift(dt.timedelta(minutes=10))  # token expired, inside the retention
        assert tasks.purge_otp_tokens.apply().get() == 0
        assert OTPToken.objects.get().delivery_status == DeliveryStatus.EXPIRED
        assert Quota.objects.get().used == 0
        clock.shift(dt.timedelta(hours=1))
        assert tasks.purge_otp_tokens.apply().get() == 1
        assert not OTPToken.objects.exists()


def test_purge_command_also_gives_back_the_quota_of_deliveries_that_never_ran(client_factory):
    with time_machine.travel(START, tick=False) as clock:
        client = client_factory(sms_quota=5).client
        queued_token(client)
        clock.shift(dt.timedelta(minutes=10))
        out = io.StringIO()
        call_command("purge_otp_tokens", "--older-than", "3600", stdout=out)
        assert out.getvalue().strip() == "0"  # kept for the log ...
        assert OTPToken.objects.get().delivery_status == DeliveryStatus.EXPIRED
        assert Quota.objects.get().used == 0  # ... but its quota is back


# --- rate limits -----------------------------------------------------------------------------


def test_retry_after_names_the_longest_window_that_refuses(api, api_client, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": ["2/h", "1/30s"]}
    body = {"usage": "signup", "phone_number": PHONE}
    with time_machine.travel(START, tick=False) as clock:
        assert api.send(body, auth=api_client).status_code == 200
        refused = api.send(body, auth=api_client)
        assert refused.json()["error"] == "sms_rate_limit_exceeded"
        assert 1 <= int(refused["Retry-After"]) <= 30  # only 1/30s refuses

        clock.shift(dt.timedelta(seconds=31))
        assert api.send(body, auth=api_client).status_code == 200  # refusals were not counted
        refused = api.send(body, auth=api_client)
        # Both windows refuse now; the answer is the longer wait, not the first found.
        assert int(refused["Retry-After"]) > 30


def test_a_burst_of_refusals_leaves_the_longer_windows_alone(settings):
    """Refused hits are not counted in the hourly window even while they are in flight."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": ["1/30s", "5/h"]}

    def send() -> ratelimits.SendCharge:
        limits = ratelimits.send_limits(
            None, client_pk=1, channel="sms", recipient_hash="h" * 64, usage="login"
        )
        return ratelimits.count_send(limits, CountPlan(limits.groups))

    with time_machine.travel(START, tick=False):
        first = send()
        hourly = first.recipient.keys[1]
        with mock.patch.object(CacheStore, "refund"):  # as if refunds lagged behind
            for _ in range(10):
                with pytest.raises(SMSRateLimitExceeded) as refused:
                    send()
                assert refused.value.retry_after <= 30
        assert counters.counter_cache().get(hourly) == 1


# --- the rate-limit cache goes away ------------------------------------------------------------


def test_dead_cache_fails_closed_and_is_not_asked_again_at_once(api, api_client, settings):
    body = {"usage": "signup", "phone_number": PHONE}
    with mock.patch.object(CacheStore, "count", side_effect=ConnectionError("redis down")) as count:
        first = api.send(body, auth=api_client)
        second = api.send(body, auth=api_client)
    assert first.status_code == second.status_code == 503
    assert first.json()["error"] == "temporarily_unavailable"
    assert count.call_count == 1  # the second request did not wait for the cache
    assert not OTPToken.objects.exists()

    counters.reset_breaker()  # BREAKER_SECONDS later
    assert api.send(body, auth=api_client).status_code == 200


def test_dead_cache_fails_open_when_configured(api, api_client, settings, sms_outbox):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "RATE_LIMIT_FAIL_OPEN": True}
    with mock.patch.object(CacheStore, "count", side_effect=ConnectionError("redis down")):
        for n in range(2):
            response = api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client)
            assert response.status_code == 200, response.content
    assert len(sms_outbox) == 2  # uncounted: the limit did not apply
