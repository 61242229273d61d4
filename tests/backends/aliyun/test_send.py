"""The Alibaba Cloud SMS backend at the HTTP level: the real SDK against the fake.

What reaches Alibaba (the signed SendSms and its parameters), which template
and signature a number gets, what stops a send before any request. The SDK
client (endpoint, timeouts, credentials) is in ``test_client.py``; what each
answer becomes, in ``test_failures.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.base import (
    Accepted,
    BackendMisconfigured,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
)
from django_ciam_otp.backends.sms.aliyun import SMSBackend
from django_ciam_otp.backends.sms.aliyun.templates import api_number

from .fake import (
    CODE,
    NATIONAL,
    PHONE,
    SIGN_NAME,
    FakeAliyun,
)

Configure = Callable[..., None]
ROOT = Path(__file__).resolve().parents[3]


def make_message(**kwargs: Any) -> OTPMessage:
    values: dict[str, Any] = {
        "channel": "sms",
        "recipient": PHONE,
        "code": CODE,
        "usage": "login",
        "validity_seconds": 120,
        "token_id": 7,
    }
    values.update(kwargs)
    return OTPMessage(**values)


# --- success and the request Alibaba receives -----------------------------------------


def test_success_returns_the_biz_id(backend: SMSBackend, fake: FakeAliyun) -> None:
    sent = backend.send(make_message())

    assert fake.rejected == []
    [request] = fake.received
    assert sent == Accepted(next(iter(fake.bodies)))
    assert request.action == "SendSms"
    assert request.headers["host"] == "dysmsapi.aliyuncs.com"
    assert request.headers["x-acs-version"] == "2017-05-25"
    assert request.params == {
        "PhoneNumbers": NATIONAL,  # mainland: the 11 national digits
        "SignName": SIGN_NAME,
        "TemplateCode": "SMS_100001",
        "TemplateParam": f'{{"code":"{CODE}"}}',  # compact, strings only
        "OutId": "otp_token:7",
    }


def test_without_a_token_there_is_no_out_id(backend: SMSBackend, fake: FakeAliyun) -> None:
    backend.send(make_message(token_id=None))

    assert "OutId" not in fake.received[0].params


def test_default_template_serves_usages_not_listed(fake: FakeAliyun, configure: Configure) -> None:
    configure(TEMPLATE_CODES={"login": "SMS_EN_LOGIN", "default": "SMS_100001"})
    backend = SMSBackend()

    backend.send(make_message(usage="login"))
    backend.send(make_message(usage="reset_password"))

    assert [r.params["TemplateCode"] for r in fake.sends] == ["SMS_EN_LOGIN", "SMS_100001"]


@pytest.mark.parametrize(("seconds", "minutes"), [(60, "1"), (90, "1"), (119, "1"), (3600, "60")])
def test_minutes_never_exceed_the_real_validity(
    fake: FakeAliyun, configure: Configure, seconds: int, minutes: str
) -> None:
    configure(TEMPLATE_PARAMS={"code": "code", "min": "minutes"})

    SMSBackend().send(make_message(validity_seconds=seconds))

    assert json.loads(fake.sends[0].params["TemplateParam"]) == {"code": CODE, "min": minutes}


def test_template_variables_are_named_by_the_site(fake: FakeAliyun, configure: Configure) -> None:
    configure(TEMPLATE_PARAMS={"otp": "code", "ttl": "seconds"})

    SMSBackend().send(make_message())

    # Strings only: Alibaba refuses {"code": 802731} (isv.INVALID_JSON_PARAM).
    assert json.loads(fake.sends[0].params["TemplateParam"]) == {"otp": CODE, "ttl": "120"}


def test_a_validity_under_a_minute_is_not_announced_as_minutes(
    fake: FakeAliyun, configure: Configure
) -> None:
    configure(TEMPLATE_PARAMS={"code": "code", "minutes": "minutes"})
    with pytest.raises(PermanentDeliveryError) as excinfo:
        SMSBackend().send(make_message(validity_seconds=45))
    assert type(excinfo.value) is NotDeliverableHere  # another backend may announce seconds
    assert excinfo.value.provider_code == "ValidityUnderAMinute"
    assert fake.received == []


def test_constructor_arguments_override_settings(fake: FakeAliyun, configure: Configure) -> None:
    configure(SIGN_NAME="")  # overridden below
    backend = SMSBackend(sign_name="Other", template_codes={"default": "SMS_9"})

    backend.send(make_message())

    assert fake.sends[0].params["SignName"] == "Other"
    assert fake.sends[0].params["TemplateCode"] == "SMS_9"


def test_templates_and_signatures_by_language(
    fake: FakeAliyun, configure: Configure, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "en"
    configure(
        SIGN_NAME={"en": "Acme", "zh-hans": "阿克米"},
        TEMPLATE_CODES={"login": {"en": "SMS_1", "zh": "SMS_2"}, "default": "SMS_3"},
    )
    backend = SMSBackend()

    backend.send(make_message(language="zh-hans"))  # "zh" serves "zh-hans"
    backend.send(make_message(language="en"))
    backend.send(make_message(language="fr"))  # neither: the site's LANGUAGE_CODE
    backend.send(make_message(language="zh-hans", usage="signup"))

    assert [(r.params["TemplateCode"], r.params["SignName"]) for r in fake.sends] == [
        ("SMS_2", "阿克米"),
        ("SMS_1", "Acme"),
        ("SMS_1", "Acme"),
        ("SMS_3", "阿克米"),
    ]


def test_the_fake_really_checks_the_signature(fake: FakeAliyun, configure: Configure) -> None:
    configure(ACCESS_KEY_SECRET="not-the-secret-the-fake-knows")

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "SignatureDoesNotMatch"
    assert fake.rejected == ["SignatureDoesNotMatch: signature mismatch"]
    assert fake.received == []


def test_an_unknown_access_key_stops_the_line(fake: FakeAliyun, configure: Configure) -> None:
    configure(ACCESS_KEY_ID="LTAI5tSomebodyElse")

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "InvalidAccessKeyId.NotFound"


# --- numbers outside the mainland ---------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+8613711112222", "13711112222"),
        ("+85291234567", "85291234567"),  # Hong Kong: country code + number, no + or 00
        ("+886912345678", "886912345678"),
        ("+14155550123", "14155550123"),
        ("+390612345678", "390612345678"),  # Italy keeps its leading zero
    ],
)
def test_numbers_are_spelt_as_sendsms_documents(number: str, expected: str) -> None:
    assert api_number(number) == expected


def test_international_numbers_use_international_templates(
    fake: FakeAliyun, configure: Configure
) -> None:
    configure(
        INTERNATIONAL={
            "default": {"TEMPLATE_CODES": {"default": "SMS_INTL_1"}},
            "HK": {"SIGN_NAME": "Acme HK"},
        }
    )
    backend = SMSBackend()

    backend.send(make_message(recipient="+85291234567"))
    backend.send(make_message(recipient="+14155550123"))

    assert [
        (r.params["PhoneNumbers"], r.params["TemplateCode"], r.params["SignName"])
        for r in fake.sends
    ] == [
        ("85291234567", "SMS_INTL_1", "Acme HK"),
        ("14155550123", "SMS_INTL_1", SIGN_NAME),  # the top-level signature
    ]


def test_a_region_without_international_templates_is_for_another_backend(
    fake: FakeAliyun, configure: Configure
) -> None:
    configure(INTERNATIONAL={"HK": {"TEMPLATE_CODES": {"signup": "SMS_INTL_1"}}})
    backend = SMSBackend()

    for recipient, usage in (("+14155550123", "login"), ("+85291234567", "login")):
        with pytest.raises(NotDeliverableHere) as excinfo:
            backend.send(make_message(recipient=recipient, usage=usage))
        assert excinfo.value.provider_code == "NoInternationalTemplate"
    assert fake.received == []


def test_a_recipient_that_is_no_number_is_permanent(backend: SMSBackend, fake: FakeAliyun) -> None:
    with pytest.raises(PermanentDeliveryError) as excinfo:
        backend.send(make_message(recipient="not-a-number"))

    assert excinfo.value.provider_code == "InvalidNumber"
    assert fake.received == []


# --- missing settings ------------------------------------------------------------------------


def test_missing_template_stops_the_line(fake: FakeAliyun, configure: Configure) -> None:
    configure(TEMPLATE_CODES={"login": "SMS_1"})

    with pytest.raises(BackendMisconfigured, match="signup") as excinfo:
        SMSBackend().send(make_message(usage="signup"))

    assert excinfo.value.provider_code == "NoTemplate"
    assert fake.received == []


def test_missing_signature_stops_the_line(fake: FakeAliyun, configure: Configure) -> None:
    configure(SIGN_NAME=None)

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "NoSignName"


@pytest.mark.parametrize("key", ["ACCESS_KEY_ID", "ACCESS_KEY_SECRET"])
def test_half_a_key_pair_stops_the_line(fake: FakeAliyun, configure: Configure, key: str) -> None:
    configure(**{key: None})

    with pytest.raises(BackendMisconfigured, match=key):
        SMSBackend().send(make_message())

    assert fake.received == []


def test_missing_sdk_names_the_pip_extra(
    monkeypatch: pytest.MonkeyPatch, configure: Configure
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "alibabacloud_dysmsapi20170525.client", None)

    with pytest.raises(ImproperlyConfigured, match=r"django-ciam-otp\[aliyun\]"):
        SMSBackend()


def test_importing_the_backend_imports_no_sdk() -> None:
    code = (
        "import django, sys; django.setup(); "
        "import django_ciam_otp.backends.sms.aliyun; "
        "loaded = [m for m in sys.modules if m.startswith(('alibabacloud', 'darabonba', 'Tea'))]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- live -----------------------------------------------------------------------------

# LIVE TEST: sends one real SMS (and costs one message) through Alibaba Cloud.
# Runs only when every variable below is set.
LIVE_ENV = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIYUN_SMS_SIGN_NAME",
    "ALIYUN_SMS_TEMPLATE_CODE",  # approved, one variable ${code}
    "ALIYUN_SMS_LIVE_TO",  # E.164, a phone you own
)
LIVE = all(os.environ.get(name) for name in LIVE_ENV)


@pytest.mark.skipif(not LIVE, reason="live Alibaba Cloud SMS: set " + ", ".join(LIVE_ENV))
def test_live_send_through_alibaba_cloud(configure: Configure) -> None:
    configure(
        ACCESS_KEY_ID=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        ACCESS_KEY_SECRET=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        REGION=os.environ.get("ALIYUN_SMS_REGION", "cn-hangzhou"),
        ENDPOINT=os.environ.get("ALIYUN_SMS_ENDPOINT", "dysmsapi.aliyuncs.com"),
        SIGN_NAME=os.environ["ALIYUN_SMS_SIGN_NAME"],
        TEMPLATE_CODES={"default": os.environ["ALIYUN_SMS_TEMPLATE_CODE"]},
        TIMEOUT=10,
    )

    sent = SMSBackend().send(
        make_message(recipient=os.environ["ALIYUN_SMS_LIVE_TO"], code="123456", token_id=None)
    )

    assert sent.message_id
