"""Not sending a code twice after a try whose outcome is unclear.

A read timeout, a broken connection, a gateway 5xx or ``isp.SYSTEM_ERROR``
(:data:`.errors.UNCLEAR_OUTCOMES`) may come after Alibaba accepted the
message. The next try then looks first: ``QuerySendDetails`` for the number
on the days the code lived, matched by the ``OutId`` this backend sends
(``otp_token:<id>``). A match Alibaba has not marked failed means the code
went out. The unclear try is remembered in the shared cache until the
message is settled, so a clear refusal in between (throttling) does not
make the backend forget it.

Residual risk: the query shows a message once Alibaba recorded it (seconds),
so a retry that comes sooner can still send a second message; and the query
has no BizId, so receipts of a message found that way cannot be matched.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from ....counters.store import counter_cache
from ...base import OTPMessage
from .errors import UNCLEAR_OUTCOMES
from .receipts import BEIJING

logger = logging.getLogger("django_ciam_otp.backends.sms.aliyun")

#: The ``OutId`` of a message for a token (SendSms echoes it in receipts and queries).
OUT_ID = "otp_token:{}"
#: QuerySendDetails ``SendStatus``: 1 waiting for the receipt, 2 failed, 3 delivered.
SEND_FAILED = "2"
#: Seconds around a code's life the query covers (clock skew, queueing).
MARGIN = 120


def out_id(message: OTPMessage) -> str | None:
    return OUT_ID.format(message.token_id) if message.token_id is not None else None


def _key(token_id: int) -> str:
    return f"ciam_otp:aliyun:unconfirmed:{token_id}"


def earlier_try_unconfirmed(message: OTPMessage) -> bool:
    """Whether an earlier try of this message may have been accepted by Alibaba.

    True after an unclear outcome in the previous try, or in any earlier one
    (remembered in the shared cache until the message is settled), and when a
    retry knows nothing of the tries before it.
    """
    if message.previous_error in UNCLEAR_OUTCOMES:
        return True
    if message.attempt > 0 and not message.previous_error:
        return True
    if message.token_id is None:
        return False
    try:
        return bool(counter_cache().get(_key(message.token_id)))
    except Exception:  # noqa: BLE001 - without the cache, the previous error decides
        return False


def remember_unconfirmed(message: OTPMessage) -> None:
    if message.token_id is None:
        return
    try:
        counter_cache().set(_key(message.token_id), 1, int(message.validity_seconds) + MARGIN)
    except Exception:  # noqa: BLE001 - the previous error still says it, once
        logger.warning("Alibaba Cloud SMS: an unconfirmed try could not be noted in the cache")


def settled(message: OTPMessage) -> None:
    if message.token_id is None:
        return
    try:
        counter_cache().delete(_key(message.token_id))
    except Exception:  # noqa: BLE001, S110 - it expires with the code
        pass


def query_dates(message: OTPMessage, now: float | None = None) -> list[str]:
    """``SendDate`` values (``yyyyMMdd``, Beijing time) the code's life touched, newest first."""
    now = time.time() if now is None else now
    newest = dt.datetime.fromtimestamp(now, BEIJING).date()
    oldest = dt.datetime.fromtimestamp(now - message.validity_seconds - MARGIN, BEIJING).date()
    dates = [newest]
    while dates[-1] > oldest:
        dates.append(dates[-1] - dt.timedelta(days=1))
    return [day.strftime("%Y%m%d") for day in dates]
