"""Abuse and cost control: prefix velocity, conversion monitor, quota alarms, test recipients."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.utils import timezone

from django_ciam_otp import abuse, send_otp, signals, verify_otp
from django_ciam_otp.exceptions import RateLimitExceeded
from django_ciam_otp.models import BlockedPrefix, DeliveryStatus, OTPToken, Quota, TestRecipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_limits(settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": [],
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"ENABLED": False},
    }


def numbers(block: str, count: int) -> list[str]:
    """Adjacent numbers in one block, as a pumping bot walks them."""
    return [f"{block}{i:04d}" for i in range(count)]


def test_prefix_is_e164_digits():
    assert abuse.phone_prefix("+8613612345678") == "861361234"


def test_prefix_velocity_limit(api, api_client, settings, sms_outbox):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "PREFIX_RATE_LIMITS": ["3/m"],
        "CONVERSION_MONITOR": {"ENABLED": False},
    }
    statuses = [
        api.send({"usage": "signup", "phone_number": n}, auth=api_client).status_code
        for n in numbers("1361234", 5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    # another block is untouched
    assert (
        api.send({"usage": "signup", "phone_number": "13698765432"}, auth=api_client).status_code
        == 200
    )
    assert len(sms_outbox) == 4


def test_prefix_refusal_hands_back_the_recipient_counter(api, api_client, settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "PREFIX_RATE_LIMITS": ["1/m"],
        "CONVERSION_MONITOR": {"ENABLED": False},
    }
    assert (
        api.send({"usage": "signup", "phone_number": "13612340000"}, auth=api_client).status_code
        == 200
    )
    assert (
        api.send({"usage": "signup", "phone_number": "13612340001"}, auth=api_client).status_code
        == 429
    )
    settings.CIAM_OTP = {**settings.CIAM_OTP, "PREFIX_RATE_LIMITS": []}
    # 13612340001 got nothing, so its own 1/30s limit was not used up
    assert (
        api.send({"usage": "signup", "phone_number": "13612340001"}, auth=api_client).status_code
        == 200
    )


def test_conversion_monitor_blocks_a_prefix_that_never_verifies(
    api, api_client, settings, sms_outbox
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {
            "ENABLED": True,
            "WINDOW": 3600,
            "MIN_SENDS": 5,
            "MIN_RATIO": 0.3,
            "COOLDOWN": 600,
            "NEW_PREFIX_NUMBERS": 0,  # the ratio alone (the cap is tested below)
        },
    }
    fired = []
    signals.prefix_blocked.connect(lambda sender, **kw: fired.append(kw), weak=False)
    try:
        statuses = [
            api.send({"usage": "signup", "phone_number": n}, auth=api_client).status_code
            for n in numbers("1361234", 8)
        ]
    finally:
        signals.prefix_blocked.receivers.clear()
    assert statuses == [200] * 5 + [429] * 3
    assert len(sms_outbox) == 5
    blocked = BlockedPrefix.objects.get()
    assert blocked.prefix == "861361234" and blocked.is_active
    assert fired and fired[0]["stats"].sends == 5
    response = api.send({"usage": "signup", "phone_number": "13612349999"}, auth=api_client)
    assert response.json()["error"] == "rate_limit_exceeded"
    assert 500 < int(response["Retry-After"]) <= 601
    abuse.unblock_prefix("861361234")
    assert (
        api.send({"usage": "signup", "phone_number": "13612349999"}, auth=api_client).status_code
        == 200
    )


def test_a_verified_code_lifts_a_block_and_the_counters_judge_again(
    api, api_client, settings, sms_outbox
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"MIN_SENDS": 5, "MIN_RATIO": 0.3, "NEW_PREFIX_NUMBERS": 0},
    }
    tokens = [
        api.send({"usage": "signup", "phone_number": n}, auth=api_client).json()["otp_token"]
        for n in numbers("1361234", 5)
    ]
    assert BlockedPrefix.objects.get().is_active
    verify_otp(
        api_client.client,
        tokens[0],
        sms_outbox[0].code,
        phone_number="13612340000",
        usage="signup",
    )
    assert not BlockedPrefix.objects.get().is_active
    # 1 verified of 5 is still below 30 %: the next send is refused and the block is back.
    response = api.send({"usage": "signup", "phone_number": "13612340005"}, auth=api_client)
    assert response.status_code == 429
    assert BlockedPrefix.objects.get().is_active
    assert len(sms_outbox) == 5


def test_verified_prefix_is_not_blocked(
    api_client, settings, sms_outbox, django_capture_on_commit_callbacks
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {
            "ENABLED": True,
            "WINDOW": 3600,
            "MIN_SENDS": 5,
            "MIN_RATIO": 0.3,
            "COOLDOWN": 600,
        },
    }
    for n in numbers("1361234", 12):
        with django_capture_on_commit_callbacks(execute=True):
            result = send_otp(api_client.client, usage="signup", phone_number=n)
        verify_otp(
            api_client.client, result.otp_token, sms_outbox[-1].code, phone_number=n, usage="signup"
        )
    assert not BlockedPrefix.objects.exists()
    stats = abuse.conversion("prefix:861361234")
    assert (stats.sends, stats.verifications) == (12, 12)


@pytest.fixture
def unproven_cap(settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": [],
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"MIN_SENDS": 100, "NEW_PREFIX_NUMBERS": 3},
    }


def test_an_unproven_prefix_is_blocked_after_a_few_numbers_until_one_verifies(
    api, api_client, unproven_cap, sms_outbox
):
    first, second, third, fourth = numbers("1361234", 4)
    fired = []
    signals.prefix_blocked.connect(lambda sender, **kw: fired.append(kw), weak=False)
    tokens = {}
    try:
        for n in (first, second, first, third):  # a resend is not a new number
            response = api.send({"usage": "signup", "phone_number": n}, auth=api_client)
            assert response.status_code == 200
            tokens[n] = response.json()["otp_token"]
        assert not BlockedPrefix.objects.exists()
        response = api.send({"usage": "signup", "phone_number": fourth}, auth=api_client)
    finally:
        signals.prefix_blocked.receivers.clear()
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limit_exceeded"
    assert 3500 < int(response["Retry-After"]) <= 3601  # the cool-down
    assert len(sms_outbox) == 4
    blocked = BlockedPrefix.objects.get()
    assert blocked.prefix == "861361234" and blocked.is_active
    assert "none verified" in blocked.reason
    assert fired and fired[0]["blocked_prefix"] == blocked
    # Another block is not affected.
    other = api.send({"usage": "signup", "phone_number": "13612350000"}, auth=api_client)
    assert other.status_code == 200
    # One verified code proves the block: the block is lifted, the fourth number gets its code.
    verify_otp(
        api_client.client, tokens[third], sms_outbox[3].code, phone_number=third, usage="signup"
    )
    assert not BlockedPrefix.objects.get().is_active
    assert api.send({"usage": "signup", "phone_number": fourth}, auth=api_client).status_code == 200
    for n in numbers("1361235", 10)[1:]:  # ... and the other block is unproven still
        api.send({"usage": "signup", "phone_number": n}, auth=api_client)
    assert BlockedPrefix.objects.get(prefix="861361235").is_active


def test_unblocking_a_prefix_also_vouches_for_it(api, api_client, unproven_cap):
    for n in numbers("1361234", 3):
        assert api.send({"usage": "signup", "phone_number": n}, auth=api_client).status_code == 200
    refused = api.send({"usage": "signup", "phone_number": "13612340003"}, auth=api_client)
    assert refused.status_code == 429
    abuse.unblock_prefix("861361234")
    for n in numbers("1361234", 10)[3:]:
        assert api.send({"usage": "signup", "phone_number": n}, auth=api_client).status_code == 200


def test_under_attack_neighbouring_numbers_of_an_unproven_prefix_get_one_code(
    api, api_client, settings, sms_outbox
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": [],
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {
            "MIN_SENDS": 100,
            "NEW_PREFIX_NUMBERS": 3,
            "ATTACK_BLOCKS": 3,
            "ATTACK_RANGE_LENGTH": 11,
            "ATTACK_RANGE_NUMBERS": 1,
        },
    }

    def send(phone: str) -> int:
        return api.send({"usage": "signup", "phone_number": phone}, auth=api_client).status_code

    until = timezone.now() + dt.timedelta(hours=1)
    BlockedPrefix.objects.create(prefix="861380000", blocked_until=until)
    BlockedPrefix.objects.create(prefix="861380001", blocked_until=until)
    BlockedPrefix.objects.create(prefix="861380002", blocked_until=timezone.now())  # over
    assert not abuse.under_attack()
    assert send("13612340000") == 200 and send("13612340001") == 200  # neighbours, no attack
    BlockedPrefix.objects.create(prefix="861380003", blocked_until=until)
    assert abuse.under_attack()

    # Under attack: three numbers of an unproven block, in three ranges of 100, get codes ...
    assert [send(n) for n in ("13612350007", "13612350107", "13612350007", "13612350207")] == [
        200
    ] * 4
    assert not BlockedPrefix.objects.filter(prefix="861361235").exists()
    # ... a neighbour of one of them does not, and the block is blocked.
    assert send("13612360000") == 200
    assert send("13612360001") == 429
    blocked = BlockedPrefix.objects.get(prefix="861361236")
    assert blocked.is_active and "neighbouring numbers" in blocked.reason
    assert len(sms_outbox) == 7
    # No digits of the range in the cache's keys: it is named by a keyed hash.
    assert abuse.caps("861361236", "+8613612360001")[1][0].startswith("range:")
    assert "1361236000" not in abuse.caps("861361236", "+8613612360001")[1][0]


def test_the_cap_is_off_with_zero(api, api_client, settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": [],
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"MIN_SENDS": 100, "NEW_PREFIX_NUMBERS": 0},
    }
    for n in numbers("1361234", 6):
        assert api.send({"usage": "signup", "phone_number": n}, auth=api_client).status_code == 200


def test_quota_alarms_once_per_threshold(api, client_factory, settings, open_limits):
    settings.ADMINS = [("Ops", "ops@example.com")]
    api_client = client_factory(sms_quota=5)
    seen = []
    signals.quota_threshold_reached.connect(
        lambda sender, **kw: seen.append(kw["percent"]), weak=False
    )
    try:
        for i in range(6):
            api.send({"usage": "signup", "phone_number": f"1391234000{i}"}, auth=api_client)
    finally:
        signals.quota_threshold_reached.receivers.clear()
    assert seen == [80, 100]
    subjects = [m.subject for m in mail.outbox if "quota" in m.subject]
    assert len(subjects) == 2 and "80%" in subjects[0] and "100%" in subjects[1]
    assert Quota.objects.get().used == 5


@pytest.fixture
def test_recipient(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TEST_RECIPIENTS_ENABLED": True}
    return TestRecipient.objects.create(channel="sms", recipient="+8613800000000", code="246810")


def test_test_recipient_gets_fixed_code_without_delivery_or_quota(
    api, client_factory, test_recipient, sms_outbox
):
    api_client = client_factory(sms_quota=1)
    response = api.send({"usage": "signup", "phone_number": "138 0000 0000"}, auth=api_client)
    assert response.status_code == 200
    assert sms_outbox == []
    token = OTPToken.objects.get()
    assert token.is_test and token.delivery_status == DeliveryStatus.TEST
    assert Quota.objects.get().used == 0
    verified = api.verify(
        {
            "otp_token": response.json()["otp_token"],
            "otp": "246810",
            "phone_number": "13800000000",
            "usage": "signup",
        },
        auth=api_client,
    )
    assert verified.status_code == 200


def test_test_recipients_off_by_default(api, api_client, sms_outbox):
    TestRecipient.objects.create(channel="sms", recipient="+8613800000000", code="246810")
    api.send({"usage": "signup", "phone_number": "13800000000"}, auth=api_client)
    assert len(sms_outbox) == 1
    assert not OTPToken.objects.get().is_test


def test_test_recipients_refused_in_production(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TEST_RECIPIENTS_ENABLED": True}
    deploy = {m.id for m in run_checks(include_deployment_checks=True)}
    assert "ciam_otp.E009" in deploy
    settings.CIAM_OTP = {**settings.CIAM_OTP, "ALLOW_TEST_RECIPIENTS_IN_PRODUCTION": True}
    assert "ciam_otp.E009" not in {m.id for m in run_checks(include_deployment_checks=True)}


def test_a_blocked_prefix_is_refused_as_a_rate_limit(db):
    abuse.block_prefix("861361234", abuse.Conversion(10, 0))
    error = abuse.blocked_error("861361234")
    assert isinstance(error, RateLimitExceeded)
    assert 3500 < error.retry_after <= 3601  # the rest of the cool-down
    assert abuse.blocked_error("861391234") is None  # another prefix passes
