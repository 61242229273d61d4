"""System checks of the Twilio SMS backend (ids in docs/sms/twilio.md)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.core import checks

from django_ciam_otp.backends.sms.twilio import SMSBackend, check_twilio_settings

from .fake import API_KEY_SECRET, API_KEY_SID, SERVICE_SID

Configure = Callable[..., None]


def check_ids() -> list[str | None]:
    return [message.id for message in check_twilio_settings()]


def test_check_is_silent_for_other_backends(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TWILIO_SMS": {"ACCOUNT_SID": None}}  # locmem

    assert check_twilio_settings() == []


def test_a_complete_configuration_passes(configure: Configure) -> None:
    configure()
    assert check_ids() == []

    configure(FROM_NUMBER=None, MESSAGING_SERVICE_SID=SERVICE_SID)
    assert check_ids() == []

    configure(API_KEY_SID=API_KEY_SID, API_KEY_SECRET=API_KEY_SECRET)  # AUTH_TOKEN kept
    assert check_ids() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # E122: the account
        ({"ACCOUNT_SID": None}, ["ciam_otp.E122"]),
        ({"ACCOUNT_SID": "AC123"}, ["ciam_otp.E122"]),
        ({"ACCOUNT_SID": "SK" + "0" * 32}, ["ciam_otp.E122"]),  # an API key's SID
        # E123: what the API calls authenticate with
        ({"AUTH_TOKEN": None}, ["ciam_otp.E123"]),
        ({"AUTH_TOKEN": ""}, ["ciam_otp.E123"]),
        ({"API_KEY_SID": API_KEY_SID}, ["ciam_otp.E123"]),  # no secret
        ({"API_KEY_SECRET": API_KEY_SECRET}, ["ciam_otp.E123"]),  # no SID
        ({"API_KEY_SID": "AK1", "API_KEY_SECRET": API_KEY_SECRET}, ["ciam_otp.E123"]),
        # W121: an API key without AUTH_TOKEN cannot check receipts' signatures
        (
            {"AUTH_TOKEN": None, "API_KEY_SID": API_KEY_SID, "API_KEY_SECRET": API_KEY_SECRET},
            ["ciam_otp.W121"],
        ),
        # E124: exactly one sender
        ({"FROM_NUMBER": None}, ["ciam_otp.E124"]),
        ({"MESSAGING_SERVICE_SID": SERVICE_SID}, ["ciam_otp.E124"]),
        # E125: a sender Twilio takes
        ({"FROM_NUMBER": "+1 500 555 0006"}, ["ciam_otp.E125"]),  # not E.164 as written
        ({"FROM_NUMBER": "15005550006"}, ["ciam_otp.E125"]),  # no "+", too long for a code
        ({"FROM_NUMBER": "+1555123"}, ["ciam_otp.E125"]),
        ({"FROM_NUMBER": "Acme Bank Online"}, ["ciam_otp.E125"]),  # over 11 characters
        ({"FROM_NUMBER": "89361"}, []),  # a short code
        ({"FROM_NUMBER": "Acme"}, []),  # an alphanumeric sender ID
        ({"FROM_NUMBER": "+8613612345678"}, []),
        ({"FROM_NUMBER": None, "MESSAGING_SERVICE_SID": "MG12"}, ["ciam_otp.E125"]),
        # E126 / W122: the status callback URL
        ({"STATUS_CALLBACK": "/otp/receipts/twilio/"}, ["ciam_otp.E126"]),
        ({"STATUS_CALLBACK": "ftp://otp.example.com/otp/receipts/twilio/"}, ["ciam_otp.E126"]),
        ({"STATUS_CALLBACK": "https://otp_site.example.com/r/"}, ["ciam_otp.E126"]),
        ({"STATUS_CALLBACK": "http://otp.example.com/otp/receipts/twilio/"}, ["ciam_otp.W122"]),
        ({"STATUS_CALLBACK": "http://localhost:8000/otp/receipts/twilio/"}, []),
        ({"STATUS_CALLBACK": None}, []),
        # E127: the dict's shape
        ({"FROM": "+15005550006"}, ["ciam_otp.E127"]),  # a typo of FROM_NUMBER
        ({"TIMEOUT": 0}, ["ciam_otp.E127"]),
        ({"TIMEOUT": "5"}, ["ciam_otp.E127"]),
        ({"TIMEOUT": True}, ["ciam_otp.E127"]),
        ({"VALIDITY_PERIOD": 0}, ["ciam_otp.E127"]),
        ({"VALIDITY_PERIOD": 36001}, ["ciam_otp.E127"]),
        ({"VALIDITY_PERIOD": "300"}, ["ciam_otp.E127"]),
        ({"VALIDITY_PERIOD": 36000}, []),
        ({"VALIDITY_PERIOD": None}, []),
        ({"REGION": 1}, ["ciam_otp.E127"]),
        ({"AUTH_TOKEN": 12345}, ["ciam_otp.E127", "ciam_otp.E123"]),
    ],
)
def test_check_reports_bad_values(
    configure: Configure, overrides: dict[str, Any], expected: list[str]
) -> None:
    configure(**overrides)

    assert check_ids() == expected


def test_a_settings_value_that_is_not_a_dict(settings: Any, configure: Configure) -> None:
    configure()
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TWILIO_SMS": ["ACCOUNT_SID"]}

    assert check_ids() == ["ciam_otp.E127"]


def test_check_names_no_secret(configure: Configure) -> None:
    configure(API_KEY_SID="AK1", API_KEY_SECRET="s3cr3t-value", FROM_NUMBER="+1 (500) 555")

    text = " ".join(f"{m.msg} {m.hint}" for m in check_twilio_settings())

    assert "s3cr3t-value" not in text and "test-auth-token" not in text


def test_timeout_must_fit_the_delivery_task_s_soft_time_limit(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_ciam_otp.tasks import deliver_otp

    configure(TIMEOUT=6.5)  # connect + answer: 13 s, below 15 s less a second
    assert check_ids() == []

    configure(TIMEOUT=7)
    [message] = check_twilio_settings()
    assert message.id == "ciam_otp.W123"
    assert "14 s" in message.msg and f"({deliver_otp.soft_time_limit:g} s)" in message.msg

    monkeypatch.setattr(deliver_otp, "soft_time_limit", 30)  # read from the task, not copied
    assert check_ids() == []


def test_check_reports_the_missing_sdk(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "twilio.rest", None)

    [message] = check_twilio_settings()

    assert message.id == "ciam_otp.E121"
    assert 'pip install "django-ciam-otp[twilio]"' in message.msg


class MyTwilioBackend(SMSBackend):
    """A site's subclass; the checks still apply."""


def test_check_covers_subclasses(settings: Any, configure: Configure) -> None:
    configure(AUTH_TOKEN=None)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{__name__}.MyTwilioBackend"}

    assert check_ids() == ["ciam_otp.E123"]


def test_the_backend_class_answers_for_its_checks(configure: Configure) -> None:
    configure(FROM_NUMBER=None)

    assert [m.id for m in SMSBackend.check()] == ["ciam_otp.E124"]


@pytest.mark.django_db
def test_checks_run_through_the_hook_only_while_the_backend_is_configured(
    settings: Any, configure: Configure
) -> None:
    configure(ACCOUNT_SID=None, FROM_NUMBER=None)

    ids = [m.id for m in checks.run_checks()]
    assert (ids.count("ciam_otp.E122"), ids.count("ciam_otp.E124")) == (1, 1)  # once each

    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKEND": "django_ciam_otp.backends.sms.locmem.SMSBackend",
    }
    ids = [m.id for m in checks.run_checks(databases=["default"], include_deployment_checks=True)]
    assert not [i for i in ids if re.fullmatch(r"ciam_otp\.[EW]12\d", i or "")]
    assert "ciam_otp.E002" not in ids  # the unused TWILIO_SMS is not an unknown key
