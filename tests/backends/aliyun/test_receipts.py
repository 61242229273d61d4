"""SmsReport, Alibaba's HTTP batch push of delivery receipts, read by ``parse_receipts``.

The body is the array the SmsReport page shows
(https://help.aliyun.com/document_detail/101867.html); the push is unsigned,
so the shared secret of the URL decides before the body is read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import RequestFactory

from django_ciam_otp.backends.base import Receipt, ReceiptMalformed, ReceiptRefused
from django_ciam_otp.backends.sms.aliyun import SMSBackend

SECRET = "receipt-secret-0123456789abcdef"
URL = "/otp/receipts/aliyun/"


def report(**overrides: Any) -> dict[str, Any]:
    """One status report, as the SmsReport page's example."""
    entry: dict[str, Any] = {
        "phone_number": "1381111****",
        "send_time": "2017-01-01 00:00:00",
        "report_time": "2017-01-01 00:00:03",
        "success": True,
        "err_code": "DELIVERED",
        "err_msg": "用户接收成功",
        "sms_size": "1",
        "biz_id": "900619746936498441^0",
        "out_id": "otp_token:7",
    }
    entry.update(overrides)
    return entry


@pytest.fixture
def backend(configure: Callable[..., None]) -> SMSBackend:
    configure(RECEIPT_SECRET=SECRET)
    return SMSBackend()


def push(body: Any, secret: str | None = SECRET, method: str = "post") -> Any:
    query = f"?secret={secret}" if secret is not None else ""
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return getattr(RequestFactory(), method)(
        URL + query, data=data, content_type="application/json"
    )


def test_the_backend_receives_receipts() -> None:
    assert SMSBackend.receives_receipts is True
    assert SMSBackend.default_name == "aliyun"
    assert SMSBackend.settings_key == "ALIYUN_SMS"


def test_delivered_and_undelivered_reports(backend: SMSBackend) -> None:
    body = [
        report(),
        report(
            biz_id="900619746936498442^0",
            success=False,
            err_code="MOBILE_NOT_ON_SERVICE",
            err_msg="停机、空号、暂停服务、关机、不在服务区",
            report_time="2017-01-01 23:59:59",
        ),
    ]

    receipts = backend.parse_receipts(push(body))

    beijing = dt.timezone(dt.timedelta(hours=8))
    assert receipts == [
        Receipt(
            "900619746936498441^0",
            True,
            "DELIVERED",
            dt.datetime(2017, 1, 1, 0, 0, 3, tzinfo=beijing),
        ),
        Receipt(
            "900619746936498442^0",
            False,
            "MOBILE_NOT_ON_SERVICE",
            dt.datetime(2017, 1, 1, 15, 59, 59, tzinfo=dt.UTC),  # the same instant
        ),
    ]


def test_an_unreadable_report_time_is_no_time(backend: SMSBackend) -> None:
    [receipt] = backend.parse_receipts(push([report(report_time="soon")]))

    assert receipt.reported_at is None and receipt.delivered


def test_an_empty_push_has_no_receipts(backend: SMSBackend) -> None:
    assert backend.parse_receipts(push([])) == []


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET[:-1]])
def test_a_push_without_the_secret_is_refused(backend: SMSBackend, secret: str | None) -> None:
    with pytest.raises(ReceiptRefused):
        backend.parse_receipts(push(b"not even json", secret=secret))


def test_without_a_receipt_secret_every_push_is_refused(configure: Callable[..., None]) -> None:
    configure(RECEIPT_SECRET=None)

    with pytest.raises(ReceiptRefused):
        SMSBackend().parse_receipts(push([report()], secret="anything"))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        {"biz_id": "1", "success": True},  # an object, not an array
        ["a string"],
        [report(biz_id=None)],
        [report(biz_id="")],
        [{k: v for k, v in report().items() if k != "biz_id"}],
        [report(success="maybe")],
        [report(success=None)],
    ],
)
def test_malformed_pushes(backend: SMSBackend, body: Any) -> None:
    with pytest.raises(ReceiptMalformed):
        backend.parse_receipts(push(body))


def test_string_booleans_are_read(backend: SMSBackend) -> None:
    [receipt] = backend.parse_receipts(push([report(success="false", err_code="USER_REJECT")]))

    assert receipt.delivered is False and receipt.status == "USER_REJECT"


def test_only_post_is_a_push(backend: SMSBackend) -> None:
    with pytest.raises(ReceiptMalformed):
        backend.parse_receipts(RequestFactory().get(f"{URL}?secret={SECRET}"))


def test_the_answer_is_the_one_smsreport_documents(backend: SMSBackend) -> None:
    request = push([report()])
    response = backend.receipts_response(request, backend.parse_receipts(request))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"code": 0, "msg": "接收成功"}
