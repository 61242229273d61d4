"""What each answer of Alibaba (or its absence) becomes, through the real SDK and the fake.

Each refusal must become the right DeliveryError class with a reason that
keeps Alibaba's code and RequestId but neither the code sent nor the number;
an unclear outcome must make the next try look before it sends again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from django_ciam_otp.backends.base import (
    Accepted,
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.aliyun import SMSBackend, resend
from django_ciam_otp.backends.sms.aliyun.receipts import BEIJING

from .fake import (
    CODE,
    NATIONAL,
    PHONE,
    REQUEST_ID,
    FakeAliyun,
    detail,
    drop,
    gateway_error,
    hang,
    ok,
    queried,
    refused,
    sequence,
)

T, P, N, M = (
    TransientDeliveryError,
    PermanentDeliveryError,
    NotDeliverableHere,
    BackendMisconfigured,
)
Configure = Callable[..., None]
FLOW = "isv.BUSINESS_LIMIT_CONTROL"
MINUTE = "触发分钟级流控Permits:1"  # the Message Alibaba answers with [F]


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


# Alibaba's messages can quote the request; the reason must not.
LEAKY_MESSAGE = f"number {PHONE} ({NATIONAL}) rejected, TemplateParam {{code: {CODE}}}"

REFUSALS = [  # HTTP 200, Code other than OK
    ("isv.MOBILE_NUMBER_ILLEGAL", P),
    ("isv.MOBILE_COUNT_OVER_LIMIT", P),
    ("isv.BLACK_KEY_CONTROL_LIMIT", P),
    ("isv.SMS_SIGNATURE_ILLEGAL", M),
    ("isv.SMS_TEMPLATE_ILLEGAL", M),
    ("isv.AMOUNT_NOT_ENOUGH", M),
    ("isv.OUT_OF_SERVICE", M),
    ("isv.ACCOUNT_NOT_EXISTS", M),
    ("isv.ACCOUNT_ABNORMAL", M),
    ("isv.PRODUCT_UN_SUBSCRIPT", M),
    ("isv.SMS_TEST_NUMBER_LIMIT", M),
    ("isp.RAM_PERMISSION_DENY", M),
    ("isv.DOMESTIC_NUMBER_NOT_SUPPORTED", N),
    ("isp.SYSTEM_ERROR", T),
    ("isv.SOMETHING_NEW", T),
]

GATEWAY_ERRORS = [  # HTTP 4xx / 5xx with a JSON error
    (404, "InvalidAccessKeyId.NotFound", M),
    (400, "InvalidAccessKeyId.Inactive", M),
    (403, "Forbidden.RAM", M),
    (400, "InvalidTimeStamp.Expired", M),
    (400, "Throttling.User", T),
    (500, "InternalError", T),
    (503, "ServiceUnavailable", T),
]


@pytest.mark.parametrize(("code", "expected"), REFUSALS)
def test_refusals(
    backend: SMSBackend, fake: FakeAliyun, code: str, expected: type[DeliveryError]
) -> None:
    fake.reply = refused(code, LEAKY_MESSAGE)

    with pytest.raises(DeliveryError) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == code
    assert code in excinfo.value.reason
    assert REQUEST_ID in excinfo.value.reason  # RequestId kept for Alibaba's support
    assert CODE not in excinfo.value.reason
    assert NATIONAL not in excinfo.value.reason
    assert "+86137****2222" in excinfo.value.reason
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


@pytest.mark.parametrize(("status", "code", "expected"), GATEWAY_ERRORS)
def test_gateway_errors(
    backend: SMSBackend, fake: FakeAliyun, status: int, code: str, expected: type[DeliveryError]
) -> None:
    fake.reply = gateway_error(status, code, LEAKY_MESSAGE)

    with pytest.raises(DeliveryError) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == code
    assert REQUEST_ID in excinfo.value.reason
    assert CODE not in excinfo.value.reason and NATIONAL not in excinfo.value.reason


def test_throttling_waits_as_long_as_alibaba_says(backend: SMSBackend, fake: FakeAliyun) -> None:
    fake.reply = lambda request: (
        *gateway_error(400, "Throttling.User", "Request was denied due to user flow control.")(
            request
        ),
        {"x-acs-retry-after": "3000"},  # milliseconds, as the SDK itself reads it
    )

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "Throttling.User"
    assert excinfo.value.retry_after == 3


@pytest.mark.parametrize(
    ("message", "expected", "wait"),
    [
        (MINUTE, T, 61),
        ("触发小时级流控Permits:5", P, None),  # a code lives minutes: an hour is too long
        ("触发天级流控Permits:10", P, None),
        ("flow control", T, 61),  # no level named: the minute, the one an OTP flow hits
    ],
)
def test_per_number_flow_control(
    backend: SMSBackend, fake: FakeAliyun, message: str, expected: type, wait: int | None
) -> None:
    fake.reply = refused(FLOW, message)

    with pytest.raises(DeliveryError) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert getattr(excinfo.value, "retry_after", None) == wait
    assert fake.queries == []  # nothing unclear before: no need to ask


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_page_instead_of_json_is_transient(
    backend: SMSBackend, fake: FakeAliyun, status: int
) -> None:
    fake.reply = lambda request: (status, b"<html><body>Bad Gateway</body></html>")

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "UnreadableAnswer"


def test_garbage_answer_is_transient(backend: SMSBackend, fake: FakeAliyun) -> None:
    fake.reply = lambda request: (200, b"this is not json")

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "UnreadableAnswer"


def test_ok_without_a_biz_id_is_not_success(backend: SMSBackend, fake: FakeAliyun) -> None:
    fake.reply = lambda request: ok(request, biz_id="")

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "NoBizId"


@pytest.mark.parametrize(
    ("reply", "code"), [(hang, "Network.ReadTimeout"), (drop, "Network.ConnectionLost")]
)
def test_network_failures_are_transient(
    backend: SMSBackend, fake: FakeAliyun, reply: Any, code: str
) -> None:
    fake.reply = reply

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == code


# --- an earlier try that may have gone out --------------------------------------------------


@pytest.mark.parametrize(
    "previous",
    ["Network.ReadTimeout", "Network.ConnectionLost", "UnreadableAnswer", "isp.SYSTEM_ERROR"],
)
def test_after_an_unclear_try_a_message_with_our_out_id_means_sent(
    backend: SMSBackend, fake: FakeAliyun, previous: str
) -> None:
    fake.query_reply = queried(detail("otp_token:6"), detail("otp_token:7", send_status=1))

    sent = backend.send(make_message(attempt=1, previous_error=previous))

    assert isinstance(sent, Accepted)
    assert sent.message_id.startswith("aliyun-accepted-earlier out_id=otp_token:7")
    assert fake.sends == []  # not sent twice
    [query] = fake.queries
    assert query.params["PhoneNumber"] == NATIONAL
    assert query.params["SendDate"] == resend.query_dates(make_message())[0]
    assert query.params["PageSize"] == "50" and query.params["CurrentPage"] == "1"


def test_an_earlier_message_alibaba_marked_failed_is_sent_again(
    backend: SMSBackend, fake: FakeAliyun
) -> None:
    fake.query_reply = queried(detail("otp_token:7", send_status=2))

    sent = backend.send(make_message(attempt=1, previous_error="Network.ReadTimeout"))

    assert sent.message_id in fake.bodies
    assert len(fake.queries) == 1 and len(fake.sends) == 1


def test_after_an_unclear_try_minute_flow_control_means_sent(
    backend: SMSBackend, fake: FakeAliyun
) -> None:
    fake.reply = refused(FLOW, MINUTE)  # the query shows nothing yet: Alibaba lags

    sent = backend.send(make_message(attempt=1, previous_error="Network.ReadTimeout"))

    assert sent.message_id.startswith("aliyun-accepted-earlier after=Network.ReadTimeout")
    assert len(fake.sends) == 1 and len(fake.queries) == 1


def test_after_a_clear_refusal_there_is_nothing_to_ask(
    backend: SMSBackend, fake: FakeAliyun
) -> None:
    backend.send(make_message(attempt=1, previous_error="Throttling.User"))

    assert fake.queries == [] and len(fake.sends) == 1


def test_a_failed_query_does_not_stop_the_resend(
    backend: SMSBackend, fake: FakeAliyun, caplog: pytest.LogCaptureFixture
) -> None:
    fake.query_reply = gateway_error(403, "Forbidden.RAM", "no dysms:QuerySendDetails")

    sent = backend.send(make_message(attempt=1, previous_error="Network.ReadTimeout"))

    assert sent.message_id in fake.bodies
    assert "status query" in caplog.text and "Forbidden.RAM" in caplog.text


def test_confirm_before_resend_can_be_turned_off(fake: FakeAliyun, configure: Configure) -> None:
    configure(CONFIRM_BEFORE_RESEND=False)

    SMSBackend().send(make_message(attempt=1, previous_error="Network.ReadTimeout"))

    assert fake.queries == [] and len(fake.sends) == 1


def test_an_unclear_try_is_remembered_past_a_clear_refusal(
    backend: SMSBackend, fake: FakeAliyun
) -> None:
    """Read timeout, then throttled, then minute flow control: the first try went out."""
    fake.reply = sequence(
        hang, gateway_error(400, "Throttling.User", "slow down"), refused(FLOW, MINUTE)
    )
    with pytest.raises(TransientDeliveryError) as first:
        backend.send(make_message())
    with pytest.raises(TransientDeliveryError) as second:
        backend.send(make_message(attempt=1, previous_error=first.value.provider_code))
    assert second.value.provider_code == "Throttling.User"

    sent = backend.send(make_message(attempt=2, previous_error=second.value.provider_code))

    assert sent.message_id.startswith("aliyun-accepted-earlier")
    assert len(fake.sends) == 3


def test_a_settled_message_forgets_its_unclear_try(backend: SMSBackend, fake: FakeAliyun) -> None:
    fake.reply = sequence(hang, ok, refused(FLOW, MINUTE))
    with pytest.raises(TransientDeliveryError):
        backend.send(make_message())
    backend.send(make_message(attempt=1, previous_error="Network.ReadTimeout"))

    # A later message to the same token id (a test's reuse) starts clean.
    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message(attempt=0))
    assert excinfo.value.retry_after == 61


def test_the_query_covers_every_beijing_day_the_code_lived() -> None:
    import datetime as dt

    just_after_midnight = dt.datetime(2026, 5, 5, 0, 1, tzinfo=BEIJING).timestamp()
    afternoon = dt.datetime(2026, 5, 5, 15, 0, tzinfo=BEIJING).timestamp()

    assert resend.query_dates(make_message(), just_after_midnight) == ["20260505", "20260504"]
    assert resend.query_dates(make_message(), afternoon) == ["20260505"]


# --- nothing secret reaches the logs --------------------------------------------------


def test_logs_hold_neither_code_nor_phone_number(
    backend: SMSBackend,
    fake: FakeAliyun,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEBUG", "sdk")  # the SDK then logs each request line, query included
    caplog.set_level(logging.DEBUG)

    backend.send(make_message())
    fake.reply = refused(FLOW, LEAKY_MESSAGE)
    with pytest.raises(TransientDeliveryError):
        backend.send(make_message())
    fake.query_reply = queried(detail("otp_token:7"))
    backend.send(make_message(attempt=1, previous_error="Network.ReadTimeout"))

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "+86137****2222" in text  # the backend did log, masked
    printed = "".join(capfd.readouterr())  # darabonba-core has a stderr handler of its own
    for output in (text, printed):
        assert CODE not in output
        assert NATIONAL not in output
