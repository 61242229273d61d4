"""Alibaba's delivery receipts: the SmsReport HTTP batch push.

https://help.aliyun.com/document_detail/101867.html ("SmsReport"): once the
console's "HTTP batch push" is on with a receiving URL, Alibaba POSTs a JSON
array of status reports, several messages per request::

    [{"phone_number": "1381111****", "send_time": "2017-01-01 00:00:00",
      "report_time": "2017-01-01 00:00:00", "success": true,
      "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
      "biz_id": "12345", "out_id": "67890"}]

and expects HTTP 200 with ``{"code": 0, "msg": "接收成功"}`` (only that
``code`` is a number is checked); anything else is pushed again after 1, 5
and 10 minutes, then dropped. The push is not signed: the URL given to
Alibaba carries ``?secret=<RECEIPT_SECRET>`` (see
:mod:`django_ciam_otp.backends.receipts`), checked before the body is read.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ...base import Receipt, ReceiptMalformed
from ...receipts import readable

#: Alibaba's clock: report times are Beijing time, written without an offset.
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: The answer SmsReport documents; a 200 with anything else is pushed again.
ACKNOWLEDGEMENT = {"code": 0, "msg": "接收成功"}
#: A push that large is not Alibaba's (it merges reports, but not by the thousands).
MAX_REPORTS = 5000


def parse_reports(body: bytes) -> list[Receipt]:
    """The receipts in an SmsReport body (unreadable reports skipped); :class:`ReceiptMalformed`
    when it is not one."""
    try:
        reports = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReceiptMalformed("not JSON") from None
    if not isinstance(reports, list):
        raise ReceiptMalformed("not a JSON array of reports")
    if len(reports) > MAX_REPORTS:
        raise ReceiptMalformed(f"more than {MAX_REPORTS} reports")
    return readable(reports, _receipt, "Alibaba Cloud SMS")


def _receipt(report: Any, index: int) -> Receipt:
    if not isinstance(report, dict):
        raise ReceiptMalformed(f"report {index} is not an object")
    biz_id = report.get("biz_id")
    if not isinstance(biz_id, str | int) or isinstance(biz_id, bool) or not str(biz_id).strip():
        raise ReceiptMalformed(f"report {index} has no biz_id")
    success = report.get("success")
    if isinstance(success, str) and success.lower() in ("true", "false"):
        success = success.lower() == "true"
    if not isinstance(success, bool):
        raise ReceiptMalformed(f"report {index} has no boolean success")
    status = "DELIVERED" if success else str(report.get("err_code") or "UNKNOWN")[:64]
    return Receipt(
        message_id=str(biz_id).strip(),
        delivered=success,
        status=status,
        reported_at=beijing_time(report.get("report_time")),
    )


def beijing_time(value: Any) -> dt.datetime | None:
    """``"yyyy-MM-dd HH:mm:ss"`` in Beijing time -> an aware datetime (``None``: unreadable)."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None
