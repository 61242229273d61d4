"""Tencent Cloud SMS status callbacks (短信下发状态回调): what the carrier said of each message.

Tencent posts a JSON array to the callback URL set in the console (SMS →
Application Settings → Callback), one object per message::

    [{"user_receive_time": "2024-03-01 08:03:04", "nationcode": "86",
      "mobile": "136…", "report_status": "SUCCESS", "errmsg": "DELIVRD",
      "description": "用户短信送达成功", "sid": "2433:…"}]

and wants ``{"result": 0, "errmsg": "OK"}`` back
(https://www.tencentcloud.com/document/product/382/37809,
https://cloud.tencent.com/document/product/382/52077). ``sid`` is the
``SerialNo`` ``SendSms`` returned. Tencent signs nothing, so the URL given to
it carries ``?secret=<RECEIPT_SECRET>`` (``backends/receipts.py``). The
phone number in the body is never stored or logged: the message id names the
token.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from ...base import Receipt, ReceiptMalformed
from ...receipts import readable, require_shared_secret

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

#: Tencent reports times in Beijing time.
BEIJING = dt.timezone(dt.timedelta(hours=8))
#: ``report_status`` of a message the handset got.
DELIVERED = "SUCCESS"
#: What Tencent wants back once the receipts are taken.
ACKNOWLEDGEMENT = {"result": 0, "errmsg": "OK"}


def parse(request: HttpRequest, secret: str | None) -> list[Receipt]:
    """The receipts of an authentic callback (the shared secret checked first)."""
    require_shared_secret(request, secret)
    try:
        items = json.loads(request.body)
    except ValueError as exc:
        raise ReceiptMalformed("not JSON") from exc
    if isinstance(items, dict):  # a single report, as some consoles send it
        items = [items]
    if not isinstance(items, list):
        raise ReceiptMalformed("not a list of reports")
    return readable(items, _receipt, "Tencent Cloud SMS")


def _receipt(item: Any, index: int) -> Receipt:
    if not isinstance(item, dict) or not isinstance(item.get("sid"), str) or not item["sid"]:
        raise ReceiptMalformed("a report without sid")
    status = str(item.get("report_status") or "")
    return Receipt(
        message_id=item["sid"],
        delivered=status == DELIVERED,
        status=str(item.get("errmsg") or status)[:64],
        reported_at=_time(item.get("user_receive_time")),
    )


def _time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def acknowledge() -> HttpResponse:
    from django.http import JsonResponse

    return JsonResponse(ACKNOWLEDGEMENT)
