"""Tencent's status callbacks: refused without the shared secret, read with it, end to end."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from django_ciam_otp.backends.base import ReceiptMalformed, ReceiptRefused
from django_ciam_otp.backends.sms import tencent
from django_ciam_otp.backends.sms.tencent import receipts
from django_ciam_otp.models import DeliveryStatus, OTPToken, TokenStatus

SECRET = "a-long-random-receipt-secret"  # noqa: S105
REPORT = {
    "user_receive_time": "2024-03-01 08:03:04",
    "nationcode": "86",
    "mobile": "13612345678",
    "report_status": "SUCCESS",
    "errmsg": "DELIVRD",
    "description": "用户短信送达成功",
    "sid": "2433:1234567890",
}


def callback(body: Any, secret: str | None = SECRET) -> Any:
    query = f"?secret={secret}" if secret is not None else ""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RequestFactory().post(
        f"/otp/receipts/tencent/{query}", data=raw, content_type="application/json"
    )


def test_reads_the_report_of_each_message() -> None:
    failed = {**REPORT, "sid": "2433:2", "report_status": "FAIL", "errmsg": "MK:0005"}
    found = receipts.parse(callback([REPORT, failed]), SECRET)
    assert [(r.message_id, r.delivered, r.status) for r in found] == [
        ("2433:1234567890", True, "DELIVRD"),
        ("2433:2", False, "MK:0005"),
    ]
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert found[0].reported_at == dt.datetime(2024, 3, 1, 8, 3, 4, tzinfo=beijing)


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1], SECRET + "x"])
def test_refuses_a_callback_without_the_secret(secret: str | None) -> None:
    with pytest.raises(ReceiptRefused):
        receipts.parse(callback([REPORT], secret=secret), SECRET)


def test_refuses_everything_while_no_secret_is_set() -> None:
    with pytest.raises(ReceiptRefused):
        receipts.parse(callback([REPORT]), None)


@pytest.mark.parametrize("body", [b"not json", b"42", [{"mobile": "1"}], [{"sid": ""}], ["x"]])
def test_an_authentic_body_it_cannot_read_is_malformed(body: Any) -> None:
    with pytest.raises(ReceiptMalformed):
        receipts.parse(callback(body), SECRET)


def test_one_unreadable_report_does_not_cost_the_batch() -> None:
    found = receipts.parse(callback([{"mobile": "1"}, REPORT, "x"]), SECRET)
    assert [r.message_id for r in found] == [REPORT["sid"]]


@pytest.mark.django_db
def test_a_callback_moves_the_token_and_answers_as_tencent_wants(
    configure: Callable[..., None], client_factory: Any
) -> None:
    configure(RECEIPT_SECRET=SECRET)
    assert tencent.SMSBackend.receives_receipts
    api_client = client_factory().client
    token = OTPToken.objects.create(
        token_hash="h" * 64,
        client=api_client,
        channel="sms",
        usage="login",
        recipient_hash="r" * 64,
        recipient_masked="136****5678",
        code_hash="c" * 64,
        code_length=6,
        code_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
        delivery_status=DeliveryStatus.SENT,
        delivery_backend="tencent",
        provider_message_id=REPORT["sid"],
        sent_at=dt.datetime.now(dt.UTC),
    )
    url = reverse("ciam_otp:receipts", args=["tencent"]) + f"?secret={SECRET}"
    answer = Client().post(url, data=[REPORT], content_type="application/json")
    assert (answer.status_code, answer.json()) == (200, {"result": 0, "errmsg": "OK"})
    token.refresh_from_db()
    assert (token.delivery_status, token.status) == (DeliveryStatus.DELIVERED, TokenStatus.PENDING)

    wrong = Client().post(url[: -len(SECRET)] + "x", data=[REPORT], content_type="application/json")
    assert wrong.status_code == 403
