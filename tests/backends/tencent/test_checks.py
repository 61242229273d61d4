"""System checks of the Tencent Cloud SMS backend (ids in docs/checks.md)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.core import checks

from django_ciam_otp.backends.sms.tencent import (
    SMSBackend,
    check_tencent_auth_sources,
    check_tencent_settings,
)
from django_ciam_otp.models import AuthSource, Channel, Usage

Configure = Callable[..., None]


def check_ids() -> list[str | None]:
    return [message.id for message in check_tencent_settings()]


@pytest.fixture
def regions(settings: Any) -> Callable[..., None]:
    def apply(*codes: str) -> None:
        settings.CIAM_OTP = {**settings.CIAM_OTP, "PHONE_REGIONS": list(codes)}

    return apply


def test_check_is_silent_for_other_backends(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TENCENT_SMS": {"REGION": None}}  # locmem in tests

    assert check_tencent_settings() == []


def test_check_passes_a_complete_configuration(configure: Configure) -> None:
    configure()

    assert check_ids() == []


def test_check_reports_every_missing_setting(configure: Configure) -> None:
    configure(
        CREDENTIALS="static",
        SECRET_ID=None,
        SECRET_KEY="",
        SDK_APP_ID=None,
        SIGN_NAME=None,
        TEMPLATE_IDS={},
    )

    assert check_ids() == [
        "ciam_otp.E101",
        "ciam_otp.E102",
        "ciam_otp.E103",
        "ciam_otp.E104",
        "ciam_otp.E105",
    ]


def test_no_keys_means_the_sdks_default_chain(configure: Configure) -> None:
    configure(SECRET_ID=None, SECRET_KEY=None)  # environment, profile, CVM or TKE role
    assert check_ids() == []

    configure(CREDENTIALS="default", SECRET_ID=None, SECRET_KEY=None)
    assert check_ids() == []


def test_half_a_key_pair_is_reported(configure: Configure) -> None:
    configure(SECRET_KEY=None)

    assert check_ids() == ["ciam_otp.E102"]


def test_a_credential_factory_must_import(configure: Configure) -> None:
    configure(CREDENTIALS="tests.no_such_module.factory", SECRET_ID=None, SECRET_KEY=None)

    assert check_ids() == ["ciam_otp.E107"]


def test_check_accepts_templates_for_every_usage_without_default(configure: Configure) -> None:
    configure(TEMPLATE_IDS={usage: "1001" for usage in Usage.values})
    assert check_ids() == []

    configure(TEMPLATE_IDS={"login": "1001"})
    [message] = check_tencent_settings()
    assert message.id == "ciam_otp.E105"
    assert "signup" in message.msg


def test_templates_by_language_need_the_sites_language(configure: Configure, settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"
    configure(TEMPLATE_IDS={"default": {"en": "1", "zh-hans": "2"}})
    assert check_ids() == []

    configure(TEMPLATE_IDS={"default": {"zh-hans": "2"}})  # an English request finds none
    assert check_ids() == ["ciam_otp.E105"]


def test_check_needs_no_sign_name_without_mainland_numbers(
    configure: Configure, regions: Callable[..., None]
) -> None:
    configure(SIGN_NAME=None, INTERNATIONAL={"default": {"TEMPLATE_IDS": {"default": "2001"}}})
    regions("HK", "MO")

    assert check_ids() == []


def test_every_region_needs_an_international_template(
    configure: Configure, regions: Callable[..., None]
) -> None:
    regions("CN", "HK", "US")
    configure()  # mainland templates only: Tencent refuses them for HK and US numbers
    messages = check_tencent_settings()
    assert [m.id for m in messages] == ["ciam_otp.E112", "ciam_otp.E112"]
    assert "'HK'" in messages[0].msg and "'US'" in messages[1].msg

    configure(INTERNATIONAL={"HK": {"TEMPLATE_IDS": {"default": "2001"}}})
    assert check_ids() == ["ciam_otp.E112"]  # US still has none

    configure(
        INTERNATIONAL={
            "default": {"TEMPLATE_IDS": {"default": "2001"}},
            "HK": {"TEMPLATE_IDS": {"login": "2101"}},  # merged over default's
        }
    )
    assert check_ids() == []


def test_singapore_wants_a_registered_sender_id(
    configure: Configure, regions: Callable[..., None]
) -> None:
    regions("CN", "SG")
    configure(INTERNATIONAL={"default": {"TEMPLATE_IDS": {"default": "2001"}}})
    assert check_ids() == ["ciam_otp.W104"]

    configure(
        INTERNATIONAL={
            "default": {"TEMPLATE_IDS": {"default": "2001"}},
            "SG": {"SENDER_ID": "ACME"},
        }
    )
    assert check_ids() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"TEMPLATE_ID": "1001"}, ["ciam_otp.E107"]),  # a typo of TEMPLATE_IDS
        ({"TEMPLATE_PARAMS": ["minutes"]}, ["ciam_otp.E107"]),  # no code
        ({"TEMPLATE_PARAMS": ["code", "hours"]}, ["ciam_otp.E107"]),
        ({"TEMPLATE_PARAMS": "code"}, ["ciam_otp.E107"]),
        ({"TIMEOUT": 0}, ["ciam_otp.E107"]),
        ({"TIMEOUT": "5"}, ["ciam_otp.E107"]),
        ({"CONFIRM_BEFORE_RESEND": "yes"}, ["ciam_otp.E107"]),
        ({"INTERNATIONAL": {"HK": {"TEMPLATES": {}}}}, ["ciam_otp.E107"]),
        ({"INTERNATIONAL": {"CN": {"TEMPLATE_IDS": {"default": "1"}}}}, ["ciam_otp.E107"]),
        ({"INTERNATIONAL": ["HK"]}, ["ciam_otp.E107"]),
        ({"REGION": None}, ["ciam_otp.E108"]),
        ({"REGION": "guangzhou"}, ["ciam_otp.E108"]),
        ({"REGION": "ap-mars"}, ["ciam_otp.W103"]),
        ({"ENDPOINT": "ftp://sms.example.com"}, ["ciam_otp.E109"]),
        ({"ENDPOINT": "intl"}, ["ciam_otp.E109"]),
        ({"ENDPOINT": "international"}, []),
        ({"ENDPOINT": "regional"}, []),
        ({"ENDPOINT": "regional", "REGION": "ap-nanjing"}, ["ciam_otp.W103"]),
    ],
)
def test_check_reports_bad_values(
    configure: Configure, overrides: dict[str, Any], expected: list[str]
) -> None:
    configure(**overrides)

    assert check_ids() == expected


def test_timeout_must_fit_the_delivery_tasks_soft_time_limit(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_ciam_otp.tasks import deliver_otp

    configure(TIMEOUT=5)  # a pull and a send: 10 s, below 15 s less a second
    assert check_ids() == []

    configure(TIMEOUT=7)
    [message] = check_tencent_settings()
    assert message.id == "ciam_otp.W101"
    assert "14 s" in message.msg and f"({deliver_otp.soft_time_limit:g} s)" in message.msg

    configure(TIMEOUT=7, CONFIRM_BEFORE_RESEND=False)  # one call per delivery
    assert check_ids() == []

    monkeypatch.setattr(deliver_otp, "soft_time_limit", 30)  # read from the task, not copied
    configure(TIMEOUT=7)
    assert check_ids() == []


@pytest.mark.parametrize(
    ("length", "validity", "expected"),
    [
        (6, 60, []),
        (6, 300, []),
        (4, 120, []),
        (7, 60, ["ciam_otp.E110"]),
        (10, 60, ["ciam_otp.E110"]),
        (6, 90, ["ciam_otp.W102"]),
        (6, 30, ["ciam_otp.E111"]),
    ],
)
def test_default_code_policy(
    configure: Configure, settings: Any, length: int, validity: int, expected: list[str]
) -> None:
    configure()
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "DEFAULT_CODE_LENGTH": length,
        "DEFAULT_CODE_VALIDITY": validity,
    }

    assert check_ids() == expected


def test_seconds_in_the_template_allow_any_validity(configure: Configure, settings: Any) -> None:
    configure(TEMPLATE_PARAMS=["code", "seconds"])
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DEFAULT_CODE_VALIDITY": 45}

    assert check_ids() == []


def test_validity_is_capped_by_the_token_ttl(configure: Configure, settings: Any) -> None:
    configure()
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DEFAULT_CODE_VALIDITY": 600, "TOKEN_TTL": 90}

    assert check_ids() == ["ciam_otp.W102"]  # the code lives 90 s


@pytest.mark.django_db
def test_sms_auth_sources_are_checked_against_tencents_limits(configure: Configure) -> None:
    configure()
    AuthSource.objects.create(id="fine", channel=Channel.SMS, code_length=6, code_validity=300)
    AuthSource.objects.create(id="long", channel=Channel.SMS, code_length=8, code_validity=300)
    AuthSource.objects.create(id="odd", channel=Channel.SMS, code_length=6, code_validity=90)
    AuthSource.objects.create(id="short", channel=Channel.SMS, code_length=6, code_validity=30)
    AuthSource.objects.create(id="mail", channel=Channel.EMAIL, code_length=10, code_validity=30)
    AuthSource.objects.create(
        id="off", channel=Channel.SMS, code_length=10, code_validity=30, enabled=False
    )

    messages = check_tencent_auth_sources(databases=["default"])

    assert [(m.id, m.msg.split(" has ")[0]) for m in messages] == [
        ("ciam_otp.E110", "SMS auth source 'long'"),
        ("ciam_otp.W102", "SMS auth source 'odd'"),
        ("ciam_otp.E111", "SMS auth source 'short'"),
    ]
    assert check_tencent_auth_sources(databases=None) == []  # plain `manage.py check`
    # Through the backend's check() hook: `migrate` and `check --database default` run it, once.
    ids = [m.id for m in checks.run_checks(databases=["default"])]
    assert ids.count("ciam_otp.E110") == 1
    assert "ciam_otp.E110" not in [m.id for m in checks.run_checks()]


def test_check_covers_subclasses(settings: Any, configure: Configure) -> None:
    configure(SECRET_KEY=None)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{__name__}.MyTencentBackend"}

    assert check_ids() == ["ciam_otp.E102"]


class MyTencentBackend(SMSBackend):
    """A site's subclass; the check must still apply."""


def test_check_reports_missing_sdk(monkeypatch: pytest.MonkeyPatch, configure: Configure) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "tencentcloud.sms.v20210111.models", None)

    assert check_ids() == ["ciam_otp.E106"]


def test_core_checks_report_the_backends_findings(configure: Configure) -> None:
    from django_ciam_otp.checks import check_settings

    configure(REGION=None)

    assert "ciam_otp.E108" in [m.id for m in check_settings()]


@pytest.mark.django_db
def test_the_backend_class_answers_for_its_checks(configure: Configure) -> None:
    configure(REGION=None)
    AuthSource.objects.create(id="long", channel=Channel.SMS, code_length=8, code_validity=300)

    assert [m.id for m in SMSBackend.check()] == ["ciam_otp.E108"]  # reads no database
    assert [m.id for m in SMSBackend.check_database(["default"])] == ["ciam_otp.E110"]


@pytest.mark.django_db
def test_checks_run_through_the_hook_only_while_the_backend_is_configured(
    settings: Any, configure: Configure
) -> None:
    configure(REGION=None, SDK_APP_ID=None)

    ids = [m.id for m in checks.run_checks()]
    assert (ids.count("ciam_otp.E108"), ids.count("ciam_otp.E103")) == (1, 1)  # once each

    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKEND": "django_ciam_otp.backends.sms.locmem.SMSBackend",
    }
    ids = [m.id for m in checks.run_checks(databases=["default"], include_deployment_checks=True)]
    assert not [i for i in ids if re.fullmatch(r"ciam_otp\.[EW]1\d\d", i or "")]
    assert "ciam_otp.E002" not in ids  # the unused TENCENT_SMS is not an unknown key
