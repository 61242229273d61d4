"""Twilio's refusals and failures, each through the real SDK and a mocked HTTP answer.

``EXPECTED`` was written from Twilio's error pages
(``https://www.twilio.com/docs/api/errors/<code>``), not copied from the
backend's table. The question asked of each: can a retry within the code's
life succeed (T); can no provider deliver this message (P); can this account
not reach this number while another provider may (N); or can no message
succeed until an operator acts (M)?
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from urllib3.exceptions import NewConnectionError

from django_ciam_otp.backends.base import (
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.twilio import ERROR_CLASSES, SMSBackend, classify_error

from .fake import CODE, PHONE, FakeTwilio, Sent, error, raw
from .test_send import make_message

T, P, N, M = (
    TransientDeliveryError,
    PermanentDeliveryError,
    NotDeliverableHere,
    BackendMisconfigured,
)
Configure = Callable[..., None]

EXPECTED: dict[int, type[DeliveryError]] = {
    20003: M,  # "Authenticate": wrong credentials
    20005: M,  # "Account not active": funds, trial
    20404: M,  # the account in the URL does not exist
    20429: T,  # "never processed and is always safe to retry"
    20500: T,
    20503: T,  # "try again a few times with exponential back-off"
    21211: P,  # invalid 'To' number: nobody can text it
    21265: P,  # 'To' is a short code
    21266: P,  # 'To' is the sender itself
    21408: N,  # Geo Permissions: this account, this country
    21602: M,  # empty body: the site's template
    21603: M,  # no sender
    21606: M,  # 'From' not message-capable (a long code; short codes: see below)
    21608: N,  # trial account, unverified recipient: another provider can text it
    21609: M,  # StatusCallback refused: every message names it
    21610: P,  # the person replied STOP: honour it everywhere
    21611: M,  # the sender's queue is over 10 hours long
    21612: N,  # no route for this To/From pair
    21614: P,  # not a mobile number
    21617: M,  # body over 1600 characters: the template
    21624: M,  # VALIDITY_PERIOD out of range
    21635: P,  # a landline
    21659: M,  # 'From' not a Twilio number
    21660: M,  # 'From' belongs to another account
    21661: M,  # 'From' not SMS-capable
    21701: M,  # the Messaging Service does not exist
    21702: T,  # the Messaging Service is briefly unavailable: "retry"
    21703: M,  # the Messaging Service has no sender
    21730: T,  # maintenance: "try again later"
    30001: T,  # queue overflow
    30002: M,  # account suspended
    30003: T,  # handset unreachable for now
    30005: P,  # unknown handset
    30006: P,  # landline or unreachable carrier
    30007: N,  # carrier filtering of this sender
    30008: T,  # unknown error
    30032: M,  # toll-free number not verified
    30034: M,  # unregistered 10DLC number
    30036: T,  # validity period expired in the queue
}


def test_the_table_says_what_twilio_s_pages_say() -> None:
    assert {code: cls.__name__ for code, cls in ERROR_CLASSES.items()} == {
        code: cls.__name__ for code, cls in EXPECTED.items()
    }


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_each_code_raises_its_class(
    backend: SMSBackend, fake: FakeTwilio, code: int, expected: type[DeliveryError]
) -> None:
    fake.reply = error(429 if code == 20429 else 400, code, "Unable to do it")

    with pytest.raises(DeliveryError) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == str(code)
    assert excinfo.value.reason.startswith(f"Twilio {code} (HTTP ")


@pytest.mark.parametrize(
    ("reply", "expected", "provider_code"),
    [
        (error(400, 21999), N, "21999"),  # refused for a reason not in the table
        (error(400, None), N, "HTTP400"),
        (error(401, 20999), M, "20999"),
        (error(403, None), M, "HTTP403"),
        (error(404, None), M, "HTTP404"),  # no such account: the URL has ACCOUNT_SID
        (error(429, None), T, "HTTP429"),
        (raw(502, "<html>bad gateway</html>"), T, "HTTP502"),
        (raw(503, ""), T, "HTTP503"),
        (error(500, 20999), T, "20999"),
    ],
)
def test_codes_not_in_the_table_are_judged_by_http_status(
    backend: SMSBackend, fake: FakeTwilio, reply: Any, expected: type, provider_code: str
) -> None:
    fake.reply = reply

    with pytest.raises(DeliveryError) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == provider_code


def test_rfc_9457_answers_are_classified_by_their_code(
    backend: SMSBackend, fake: FakeTwilio
) -> None:
    body = (
        '{"type": "https://www.twilio.com/docs/api/errors/21211", "title": "Invalid To",'
        f' "status": 400, "code": 21211, "detail": "{PHONE} is not valid"}}'
    )
    fake.reply = raw(400, body, {"Content-Type": "application/problem+json"})

    with pytest.raises(PermanentDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "21211"
    assert "Invalid To" in excinfo.value.reason and PHONE not in excinfo.value.reason


def test_a_short_code_abroad_tries_the_next_backend(fake: FakeTwilio, configure: Configure) -> None:
    configure(FROM_NUMBER="89361")  # a US short code cannot text a Chinese number
    fake.reply = error(400, 21606, "not a valid message-capable number for this destination")

    with pytest.raises(NotDeliverableHere):
        SMSBackend().send(make_message(recipient="+8613612345678"))


# --- Retry-After ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [({"Retry-After": "7"}, 7.0), ({"Retry-After": "0.5"}, 0.5), ({}, None)],
)
def test_retry_after_is_passed_on(
    backend: SMSBackend, fake: FakeTwilio, header: dict[str, str], expected: float | None
) -> None:
    fake.reply = error(429, 20429, "Too Many Requests", header)

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.retry_after == expected


def test_retry_after_as_an_http_date(backend: SMSBackend, fake: FakeTwilio) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    fake.reply = error(503, 20503, "unavailable", {"Retry-After": format_datetime(when, True)})

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.retry_after is not None and 85 <= excinfo.value.retry_after <= 90


def test_an_old_retry_after_is_not_read_for_a_new_failure(
    backend: SMSBackend, fake: FakeTwilio
) -> None:
    fake.reply = error(429, 20429, "slow down", {"Retry-After": "30"})
    with pytest.raises(TransientDeliveryError):
        backend.send(make_message())

    fake.reply = raising(requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.retry_after is None


# --- no answer ------------------------------------------------------------------------------


def raising(exc: BaseException) -> Callable[[Sent], Any]:
    def reply(sent: Sent) -> Any:
        raise exc

    return reply


@pytest.mark.parametrize(
    ("exc", "provider_code"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), "ConnectTimeout"),
        (
            requests.exceptions.ConnectionError(NewConnectionError(None, "refused")),  # type: ignore[arg-type]
            "ConnectFailed",
        ),
        (requests.exceptions.SSLError("handshake"), "ConnectFailed"),
        (requests.exceptions.ReadTimeout("read timed out"), "ReadTimeout"),
        (requests.exceptions.ConnectionError("reset by peer"), "ConnectionLost"),
        (requests.exceptions.ChunkedEncodingError("cut"), "ConnectionLost"),
    ],
)
def test_network_failures_are_retried(
    backend: SMSBackend, fake: FakeTwilio, exc: BaseException, provider_code: str
) -> None:
    fake.reply = raising(exc)

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == provider_code


@pytest.mark.parametrize(
    ("reply", "provider_code"),
    [
        (raw(201, "<html>not json</html>"), "UnreadableAnswer"),
        (lambda sent: (201, {}, '{"status": "queued"}'), "NoSid"),
    ],
)
def test_an_unreadable_success_is_retried(
    backend: SMSBackend, fake: FakeTwilio, reply: Any, provider_code: str
) -> None:
    fake.reply = reply

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == provider_code


# --- reasons ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        f"The 'To' number {PHONE} is not a valid phone number.",
        "The 'To' number 14155552671 is not a valid phone number.",
        "The 'To' number 4155552671 is not a valid phone number.",
        f"Body contains {CODE}",
    ],
)
def test_reasons_never_hold_the_number_or_the_code(
    backend: SMSBackend, fake: FakeTwilio, message: str
) -> None:
    fake.reply = error(400, 21211, message)

    with pytest.raises(PermanentDeliveryError) as excinfo:
        backend.send(make_message())

    assert "4155552671" not in excinfo.value.reason
    assert CODE not in excinfo.value.reason
    assert "Unable to create record" not in excinfo.value.reason  # the SDK's prefix


def test_classify_error_without_any_answer_is_transient() -> None:
    assert classify_error(None) is T
    assert classify_error("ReadTimeout") is T
