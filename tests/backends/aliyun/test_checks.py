"""System checks of the Alibaba Cloud SMS backend (ids ciam_otp.E131–E139, W131–W135)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from django_ciam_otp.backends.sms.aliyun import SMSBackend, check_aliyun_settings

Configure = Callable[..., None]


def check_ids() -> list[str | None]:
    return sorted(message.id or "" for message in check_aliyun_settings())


@pytest.fixture
def otp(settings: Any) -> Callable[..., None]:
    """Set core CIAM_OTP keys (PHONE_REGIONS, DEFAULT_CODE_LENGTH...) beside ALIYUN_SMS."""

    def apply(**entries: Any) -> None:
        settings.CIAM_OTP = {**settings.CIAM_OTP, **entries}

    return apply


def test_check_is_silent_for_other_backends(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "ALIYUN_SMS": {"REGION": None}}  # locmem in tests

    assert check_aliyun_settings() == []


def test_check_passes_a_complete_configuration(configure: Configure) -> None:
    configure()

    assert check_ids() == []


def test_the_backend_hook_runs_the_same_checks(configure: Configure) -> None:
    configure(SIGN_NAME=None, REGION="Hangzhou")

    assert sorted(m.id or "" for m in SMSBackend.check()) == check_ids()
    assert check_ids() == ["ciam_otp.E134", "ciam_otp.E137"]


def test_check_reports_every_missing_setting(configure: Configure) -> None:
    configure(
        CREDENTIALS="static",
        ACCESS_KEY_ID=None,
        ACCESS_KEY_SECRET="",
        SIGN_NAME=None,
        TEMPLATE_CODES={},
    )

    assert check_ids() == ["ciam_otp.E132", "ciam_otp.E133", "ciam_otp.E134", "ciam_otp.E135"]


def test_no_keys_means_the_sdks_default_chain(configure: Configure) -> None:
    configure(ACCESS_KEY_ID=None, ACCESS_KEY_SECRET=None)
    assert check_ids() == []

    configure(CREDENTIALS="default", ACCESS_KEY_ID=None, ACCESS_KEY_SECRET=None)
    assert check_ids() == []


def test_half_a_key_pair_is_reported(configure: Configure) -> None:
    configure(ACCESS_KEY_SECRET=None)

    assert check_ids() == ["ciam_otp.E133"]


@pytest.mark.parametrize("mode", ["env", "no.such.module.factory"])
def test_an_unusable_credential_mode_is_reported(configure: Configure, mode: str) -> None:
    configure(CREDENTIALS=mode)

    assert check_ids() == ["ciam_otp.E136"]


def test_templates_by_usage_and_language(configure: Configure) -> None:
    configure(TEMPLATE_CODES={"login": "SMS_1", "default": {"fr": "SMS_2"}})
    [message] = check_aliyun_settings()  # neither en nor zh-hans has a default

    assert message.id == "ciam_otp.E135"
    assert "reset_password, signup, update_userinfo" in message.msg

    # A language without its own template falls back on the site's LANGUAGE_CODE (en).
    configure(TEMPLATE_CODES={"default": {"en": "SMS_2"}})
    assert check_ids() == []


def test_a_signature_missing_for_one_language(configure: Configure) -> None:
    configure(SIGN_NAME={"zh-hans": "阿克米"})
    assert check_ids() == ["ciam_otp.E134"]  # en has none

    configure(SIGN_NAME={"en": "Acme"})  # zh-hans falls back on LANGUAGE_CODE
    assert check_ids() == []


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"TEMPLATE_PARAMS": ["code"]}, "TEMPLATE_PARAMS must map"),
        ({"TEMPLATE_PARAMS": {"code": "otp"}}, "unknown kinds otp"),
        ({"TEMPLATE_PARAMS": {"minutes": "minutes"}}, 'fill one variable with "code"'),
        ({"TEMPLATE_CODES": ["SMS_1"]}, "TEMPLATE_CODES must map"),
        ({"TIMEOUT": "5"}, "positive number of seconds"),
        ({"TIMEOUT": 0}, "positive number of seconds"),
        ({"CONFIRM_BEFORE_RESEND": "yes"}, "True or False"),
        ({"RECEIPT_SECRET": 12345}, "RECEIPT_SECRET must be a string"),
        ({"ACCESS_KEY_ID": 42}, "ACCESS_KEY_ID must be a string"),
        ({"SIGN_NAME": ["Acme"]}, "SIGN_NAME must be"),
        ({"SIGNATURE": "Acme"}, "unknown keys SIGNATURE"),
        ({"INTERNATIONAL": ["HK"]}, "INTERNATIONAL must map"),
        ({"INTERNATIONAL": {"HK": "SMS_1"}}, 'INTERNATIONAL["HK"] must be a dict'),
        ({"INTERNATIONAL": {"HK": {"SENDER_ID": "Acme"}}}, "unknown keys SENDER_ID"),
        ({"INTERNATIONAL": {"CN": {}}}, "mainland numbers use the top-level keys"),
        ({"INTERNATIONAL": {"default": {"TEMPLATE_PARAMS": {"c": "x"}}}}, "unknown kinds x"),
    ],
)
def test_wrong_shapes_and_types(configure: Configure, overrides: dict[str, Any], text: str) -> None:
    configure(**overrides)

    errors = [m for m in check_aliyun_settings() if m.id == "ciam_otp.E136"]

    assert errors and any(text in m.msg for m in errors), [m.msg for m in errors]


def test_a_section_that_is_not_a_dict(settings: Any, configure: Configure) -> None:
    configure()
    settings.CIAM_OTP = {**settings.CIAM_OTP, "ALIYUN_SMS": ["not", "a", "dict"]}

    assert check_ids() == ["ciam_otp.E136"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"REGION": None}, ["ciam_otp.E137"]),
        ({"REGION": "Hangzhou"}, ["ciam_otp.E137"]),
        ({"ENDPOINT": "ftp://dysmsapi.aliyuncs.com"}, ["ciam_otp.E138"]),
        ({"ENDPOINT": "dysmsapi"}, ["ciam_otp.E138"]),
        ({"ENDPOINT": None}, []),  # the SDK's endpoint for REGION
        ({"ENDPOINT": "http://127.0.0.1:8080"}, []),
    ],
)
def test_region_and_endpoint(
    configure: Configure, overrides: dict[str, Any], expected: list[str]
) -> None:
    configure(**overrides)

    assert check_ids() == expected


@pytest.mark.parametrize(
    ("timeout", "confirm", "expected"),
    [
        (4, True, []),  # three calls of 4 s: 12 s, under the 15 s soft limit less a second
        (5, True, ["ciam_otp.W131"]),  # 15 s
        (5, False, []),  # one call
        (14, False, ["ciam_otp.W131"]),
    ],
)
def test_timeout_against_the_soft_time_limit(
    configure: Configure, timeout: int, confirm: bool, expected: list[str]
) -> None:
    configure(TIMEOUT=timeout, CONFIRM_BEFORE_RESEND=confirm)

    assert check_ids() == expected


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("short", ["ciam_otp.W132"]),
        ("x" * 23, ["ciam_otp.W132"]),
        ("x" * 24, []),
        (None, []),  # unset: every receipt is refused, nothing to guess
    ],
)
def test_a_short_receipt_secret_is_a_warning(
    configure: Configure, secret: str | None, expected: list[str]
) -> None:
    configure(RECEIPT_SECRET=secret)

    assert check_ids() == expected


@pytest.mark.parametrize(("length", "expected"), [(4, []), (6, []), (8, ["ciam_otp.W133"])])
def test_code_length_against_verification_templates(
    configure: Configure, otp: Callable[..., None], length: int, expected: list[str]
) -> None:
    configure()
    otp(DEFAULT_CODE_LENGTH=length)

    assert check_ids() == expected


@pytest.mark.parametrize(
    ("validity", "expected"),
    [(60, []), (300, []), (45, ["ciam_otp.E139"]), (90, ["ciam_otp.W135"])],
)
def test_validity_announced_in_minutes(
    configure: Configure, otp: Callable[..., None], validity: int, expected: list[str]
) -> None:
    configure(TEMPLATE_PARAMS={"code": "code", "minutes": "minutes"})
    otp(DEFAULT_CODE_VALIDITY=validity)
    assert check_ids() == expected

    configure()  # a template without minutes announces nothing
    assert check_ids() == []


def test_regions_without_international_templates(
    configure: Configure, otp: Callable[..., None]
) -> None:
    otp(PHONE_REGIONS=["CN", "HK", "US"])
    configure()
    messages = check_aliyun_settings()
    assert [m.id for m in messages] == ["ciam_otp.W134", "ciam_otp.W134"]
    assert "'HK'" in messages[0].msg and "'US'" in messages[1].msg

    configure(INTERNATIONAL={"default": {"TEMPLATE_CODES": {"default": "SMS_INTL_1"}}})
    assert check_ids() == []


def test_an_international_only_site_needs_no_mainland_templates(
    configure: Configure, otp: Callable[..., None]
) -> None:
    otp(PHONE_REGIONS=["HK"])
    configure(
        TEMPLATE_CODES={},
        INTERNATIONAL={"HK": {"TEMPLATE_CODES": {"default": "SMS_INTL_1"}}},
    )

    assert check_ids() == []


def test_missing_sdk_names_the_pip_extra(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "alibabacloud_dysmsapi20170525.models", None)

    [message] = check_aliyun_settings()

    assert message.id == "ciam_otp.E131"
    assert 'pip install "django-ciam-otp[aliyun]"' in message.msg
