"""System checks of the AWS SNS SMS backend, through ``SMSBackend.check()`` (docs/sms/sns.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.sms.sns import SMSBackend, check_sns_settings

Configure = Callable[..., None]


def check_ids() -> list[str | None]:
    return [message.id for message in SMSBackend.check()]


def test_silent_while_another_backend_is_configured(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SNS_SMS": {"SMS_TYPE": "nonsense"}}  # locmem

    assert check_sns_settings() == []


def test_a_complete_configuration_passes(configure: Configure) -> None:
    configure()

    assert check_ids() == []
    assert check_sns_settings() == []  # configured: the same checks


def test_the_default_chain_needs_no_keys(configure: Configure) -> None:
    configure(ACCESS_KEY_ID=None, SECRET_ACCESS_KEY=None)

    assert check_ids() == []


def test_e141_without_boto3(configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "boto3.session", None)

    [message] = SMSBackend.check()
    assert message.id == "ciam_otp.E141"
    assert 'pip install "django-ciam-otp[sns]"' in message.msg


def test_e142_not_a_dict(settings: Any, configure: Configure) -> None:
    configure()
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SNS_SMS": ["us-east-1"]}

    assert check_ids() == ["ciam_otp.E142"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"SENDERID": "Acme"}, "unknown keys SENDERID"),
        ({"REGION": 1}, "REGION must be a string"),
        ({"REGION": "us east 1"}, "not a region name"),
        ({"PROFILE": ["a"]}, "PROFILE must be a string"),
        ({"ENDPOINT_URL": "localhost:4566"}, "ENDPOINT_URL must be an http(s) URL"),
        ({"TIMEOUT": 0}, "TIMEOUT must be a positive number"),
        ({"TIMEOUT": True}, "TIMEOUT must be a positive number"),
        ({"MAX_PRICE": "cheap"}, "MAX_PRICE is 'cheap'"),
        ({"MAX_PRICE": 0}, "MAX_PRICE is 0"),
        ({"CHECK_OPT_OUT": "yes"}, "CHECK_OPT_OUT must be True or False"),
        ({"SENDER_ID": 7}, "SENDER_ID must be a string, a dict by region or None"),
        ({"SENDER_ID": {"Germany": "Acme"}}, "SENDER_ID has the key 'Germany'"),
        ({"ORIGINATION_NUMBER": {"us": "+18445550100"}}, "ORIGINATION_NUMBER has the key 'us'"),
    ],
)
def test_e142_unknown_keys_and_wrong_kinds(
    configure: Configure, overrides: dict[str, Any], words: str
) -> None:
    configure(**overrides)

    messages = SMSBackend.check()
    assert [m.id for m in messages] == ["ciam_otp.E142"]
    assert words in messages[0].msg


@pytest.mark.parametrize("value", ["transactional", "OTP", None])
def test_e143_sms_type(configure: Configure, value: Any) -> None:
    configure(SMS_TYPE=value)

    assert check_ids() == ["ciam_otp.E143"]


@pytest.mark.parametrize(
    "value",
    ["Acme Corp", "AcmeCorporate", "12345", "-Acme", "Acme-", "", {"DE": "Acme!"}],
)
def test_e144_sender_id_format(configure: Configure, value: Any) -> None:
    configure(SENDER_ID=value)

    assert check_ids() == ["ciam_otp.E144"]


@pytest.mark.parametrize(
    "value", ["Acme", "A", "ACME-Bank", "Bank24", {"DE": "AcmeDE", "US": None, "default": "Acme"}]
)
def test_sender_ids_sns_takes(configure: Configure, value: Any) -> None:
    configure(SENDER_ID=value)

    assert check_ids() == []


@pytest.mark.parametrize(
    "value", ["+1 844 555 0100", "18445550100x", "+999999999999", "1234", {"US": "+1844"}]
)
def test_e145_origination_number(configure: Configure, value: Any) -> None:
    configure(ORIGINATION_NUMBER=value)

    assert check_ids() == ["ciam_otp.E145"]


@pytest.mark.parametrize(
    "value", ["+18445550100", "+447700900123", "12345", {"US": "+18445550100"}]
)
def test_origination_numbers_sns_takes(configure: Configure, value: Any) -> None:
    configure(ORIGINATION_NUMBER=value)

    assert check_ids() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"SECRET_ACCESS_KEY": None},
        {"ACCESS_KEY_ID": None},
        {"ACCESS_KEY_ID": None, "SECRET_ACCESS_KEY": None, "SESSION_TOKEN": "FwoGZXIvYXdz"},
    ],
)
def test_e146_half_a_key_pair(configure: Configure, overrides: dict[str, Any]) -> None:
    configure(**overrides)

    messages = SMSBackend.check()
    assert [m.id for m in messages] == ["ciam_otp.E146"]
    assert "default credential chain" in messages[0].msg


def test_temporary_keys_pass(configure: Configure) -> None:
    configure(SESSION_TOKEN="FwoGZXIvYXdz")

    assert check_ids() == []


@pytest.mark.parametrize(
    ("timeout", "check_opt_out", "ids"),
    [
        (5, False, []),
        (13.9, False, []),
        (14, False, ["ciam_otp.W141"]),  # the default soft limit is 15 s
        (7, True, ["ciam_otp.W141"]),  # two calls
        (6, True, []),
    ],
)
def test_w141_time_budget(
    configure: Configure, timeout: float, check_opt_out: bool, ids: list[str]
) -> None:
    configure(TIMEOUT=timeout, CHECK_OPT_OUT=check_opt_out)

    assert check_ids() == ids


def test_w142_promotional(configure: Configure) -> None:
    configure(SMS_TYPE="Promotional")

    assert check_ids() == ["ciam_otp.W142"]


def test_w143_no_region_anywhere(configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(REGION=None)
    assert check_ids() == ["ciam_otp.W143"]

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # as ECS or Lambda set it
    assert check_ids() == []


def test_w144_unknown_profile(configure: Configure) -> None:
    configure(ACCESS_KEY_ID=None, SECRET_ACCESS_KEY=None, PROFILE="nowhere")

    assert check_ids() == ["ciam_otp.W144"]


def test_a_known_profile_passes(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile sms]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    configure(ACCESS_KEY_ID=None, SECRET_ACCESS_KEY=None, PROFILE="sms", REGION=None)

    assert check_ids() == []  # the profile's region counts


@pytest.mark.parametrize(
    "overrides",
    [
        {"SMS_TYPE": "OTP"},
        {"SENDER_ID": "Acme Corp"},
        {"ORIGINATION_NUMBER": "1234"},
        {"SECRET_ACCESS_KEY": None},
        {"TIMEOUT": -1},
    ],
)
def test_the_constructor_refuses_what_the_checks_call_errors(
    configure: Configure, overrides: dict[str, Any]
) -> None:
    configure(**overrides)
    [message] = SMSBackend.check()

    with pytest.raises(ImproperlyConfigured) as excinfo:
        SMSBackend()
    assert message.msg in str(excinfo.value)
