"""SMS backend that keeps messages in memory, for tests.

The SMS counterpart of ``django.core.mail.outbox``: every message sent is
appended to the module-level :data:`outbox`, so a test can read the code that
was "texted" without any provider. The list object is never replaced, only
cleared in place, so ``from ...locmem import outbox`` stays valid.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from ..base import OTPMessage
from .base import BaseSMSBackend


@dataclass(frozen=True)
class SMSRecord:
    """One message as the phone would have received it, plus what tests need.

    ``code`` is copied from the :class:`OTPMessage` so a test need not parse
    it out of ``text`` (which sites may rewrite with their own templates).
    """

    phone_number: str
    text: str
    code: str
    usage: str
    message_id: str
    language: str = "en"
    token_id: int | None = None


#: Messages sent so far, oldest first.
outbox: list[SMSRecord] = []
_lock = threading.Lock()


def clear_outbox() -> None:
    """Empty :data:`outbox` in place (tests' conftest does this around each test)."""
    with _lock:
        outbox.clear()


class SMSBackend(BaseSMSBackend):
    """Append each message to :data:`outbox`; return ``locmem-<uuid>`` as its id."""

    delivers = False  # keeps messages in memory, delivers nothing: ciam_otp.W011 in production

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        record = SMSRecord(
            phone_number=phone_number,
            text=text,
            code=message.code,
            usage=message.usage,
            message_id=f"locmem-{uuid.uuid4()}",
            language=message.language,
            token_id=message.token_id,
        )
        with _lock:
            outbox.append(record)
        return record.message_id
