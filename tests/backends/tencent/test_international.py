"""Numbers outside the mainland get international templates, signatures and Sender IDs.

Tencent refuses a mainland template for any other number
(``UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone``) and a global one
for a mainland number; Hong Kong, Macao and Taiwan count as international.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from django_ciam_otp.backends.base import Accepted, BackendMisconfigured, OTPMessage
from django_ciam_otp.backends.sms.tencent import SMSBackend

from .fake import CODE, SERIAL, SIGN_NAME, FakeTencent, ok

HK, SG, US, CN = "+85251234567", "+6581234567", "+14155550123", "+8613711112222"

INTERNATIONAL = {
    "default": {"TEMPLATE_IDS": {"default": "2001", "login": "2002"}},
    "HK": {"SIGN_NAME": "Acme HK", "TEMPLATE_IDS": {"login": {"en": "2101", "zh-hant": "2102"}}},
    "SG": {"SENDER_ID": "ACME", "TEMPLATE_PARAMS": ["code"]},
}


def message(recipient: str, **kwargs: Any) -> OTPMessage:
    values: dict[str, Any] = {
        "channel": "sms",
        "recipient": recipient,
        "code": CODE,
        "usage": "login",
        "validity_seconds": 300,
        "token_id": 7,
    }
    values.update(kwargs)
    return OTPMessage(**values)


@pytest.fixture
def backend(fake: FakeTencent, configure: Callable[..., None]) -> SMSBackend:
    configure(ENDPOINT=fake.url, INTERNATIONAL=INTERNATIONAL)
    return SMSBackend()


@pytest.mark.parametrize(
    ("recipient", "language", "expected"),
    [
        (CN, "en", {"TemplateId": "1001", "SignName": SIGN_NAME, "params": [CODE, "5"]}),
        (HK, "en", {"TemplateId": "2101", "SignName": "Acme HK", "params": [CODE, "5"]}),
        (HK, "zh-hant", {"TemplateId": "2102", "SignName": "Acme HK", "params": [CODE, "5"]}),
        (SG, "en", {"TemplateId": "2002", "SenderId": "ACME", "params": [CODE]}),
        (US, "en", {"TemplateId": "2002", "params": [CODE, "5"]}),
    ],
)
def test_each_region_gets_its_template_signature_and_sender_id(
    backend: SMSBackend, fake: FakeTencent, recipient: str, language: str, expected: dict
) -> None:
    fake.reply = lambda request: ok(request, iso=request.body["PhoneNumberSet"][0][:3])

    backend.send(message(recipient, language=language))

    [request] = fake.received
    body = request.body
    assert body["PhoneNumberSet"] == [recipient]
    assert body["TemplateId"] == expected["TemplateId"]
    assert body.get("SignName") == expected.get("SignName")  # left out unless set
    assert body.get("SenderId") == expected.get("SenderId")  # mainland SMS has none
    assert body["TemplateParamSet"] == expected["params"]


def test_usages_fall_back_to_the_regions_default(backend: SMSBackend, fake: FakeTencent) -> None:
    backend.send(message(HK, usage="signup"))

    assert fake.received[0].body["TemplateId"] == "2001"


def test_the_billed_region_is_recorded(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = lambda request: ok(request, fee=3, iso="HK")

    assert backend.send(message(HK)) == Accepted(SERIAL, fee=3, region="HK")


def test_no_international_template_never_falls_back_to_a_mainland_one(
    fake: FakeTencent, configure: Callable[..., None]
) -> None:
    configure(ENDPOINT=fake.url)  # mainland templates only (the default)

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(message(HK))

    assert excinfo.value.provider_code == "NoTemplate"
    assert 'INTERNATIONAL["HK"]' in excinfo.value.reason
    assert fake.received == []


def test_mainland_numbers_need_the_signature(
    fake: FakeTencent, configure: Callable[..., None]
) -> None:
    configure(ENDPOINT=fake.url, SIGN_NAME=None, INTERNATIONAL=INTERNATIONAL)
    backend = SMSBackend()

    backend.send(message(US))  # fine: optional outside the mainland
    with pytest.raises(BackendMisconfigured) as excinfo:
        backend.send(message(CN))

    assert excinfo.value.provider_code == "NoSignName"
    assert len(fake.received) == 1
