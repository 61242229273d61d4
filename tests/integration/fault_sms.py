"""An SMS provider that fails on cue, for the worker in the integration tests.

It is the filebased backend (one file per delivered message, so a test counts
deliveries by counting files) plus a script per phone number, read from
``$FAULT_SMS_CONTROL/<number>.plan``: one instruction per line, each consumed
by one delivery attempt, in order:

``transient``   raise ``TransientDeliveryError`` (the provider throttled us)
``permanent``   raise ``PermanentDeliveryError`` (the number is invalid)
``sleep N``     write ``<number>.sending`` (with the worker's pid), sleep N seconds,
                then deliver; a test kills the worker during the sleep

Attempts without a line left deliver normally. Its name in ``SMS_BACKENDS`` is
``fault``; :class:`ReceiptsBackend` (``second``) is a plain filebased backend
that also takes delivery receipts, authenticated with the shared secret in
``$FAULT_SMS_RECEIPT_SECRET``, for the failover and receipts tests. Every attempt is logged to
``<number>.attempts`` as ``<unix time> <pid> <instruction>``, so a test can
check the backoff between retries. The plan file is read and rewritten under
an exclusive ``flock``, as the prefork pool runs attempts in several processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from django.http import HttpRequest

from django_ciam_otp.backends.base import (
    Accepted,
    OTPMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptMalformed,
    TransientDeliveryError,
)
from django_ciam_otp.backends.receipts import require_shared_secret
from django_ciam_otp.backends.sms import filebased, twilio


def control_dir() -> Path:
    return Path(os.environ["FAULT_SMS_CONTROL"])


def key_for(phone_number: str) -> str:
    return phone_number.lstrip("+")


def _next_instruction(plan: Path) -> str:
    if not plan.exists():
        return ""
    with open(plan, "r+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        lines = fh.read().splitlines()
        first, rest = (lines[0].strip(), lines[1:]) if lines else ("", [])
        fh.seek(0)
        fh.truncate()
        fh.write("".join(f"{line}\n" for line in rest))
    return first


class SMSBackend(filebased.SMSBackend):
    """Filebased delivery, after the scripted faults for the number have been played."""

    default_name = "fault"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.control = control_dir()

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        key = key_for(phone_number)
        instruction = _next_instruction(self.control / f"{key}.plan")
        with open(self.control / f"{key}.attempts", "a", encoding="utf-8") as log:
            log.write(f"{time.time():.3f} {os.getpid()} {instruction or 'deliver'}\n")
        if instruction == "transient":
            raise TransientDeliveryError("fake provider: throttled", provider_code="Throttled")
        if instruction == "permanent":
            raise PermanentDeliveryError("fake provider: invalid number", provider_code="Invalid")
        if instruction.startswith("sleep"):
            (self.control / f"{key}.sending").write_text(str(os.getpid()))
            time.sleep(float(instruction.split()[1]))
        return super().send_text(phone_number, text, message)


class ReceiptsBackend(filebased.SMSBackend):
    """Filebased delivery that takes receipts: ``[{"id", "delivered", "status"}]`` as JSON,
    posted to ``/otp/receipts/second/?secret=$FAULT_SMS_RECEIPT_SECRET``."""

    default_name = "second"
    receives_receipts = True

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        require_shared_secret(request, os.environ.get("FAULT_SMS_RECEIPT_SECRET"))
        try:
            items = json.loads(request.body)
            return [Receipt(str(i["id"]), bool(i["delivered"]), str(i["status"])) for i in items]
        except (ValueError, TypeError, KeyError) as exc:
            raise ReceiptMalformed(type(exc).__name__) from exc


class TwilioFileBackend(twilio.SMSBackend):
    """Twilio's backend with its settings, checks and status callbacks as shipped, but the
    message written to a file (as the filebased backend does) instead of Twilio's API: the
    stack's receipts test signs callbacks with ``TWILIO_SMS["AUTH_TOKEN"]`` as Twilio would."""

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> Accepted:
        written = filebased.SMSBackend(file_path=os.environ["OTP_SMS_FILE_PATH"])
        written.send_text(phone_number, text, message)
        return Accepted(message_id="SM" + secrets.token_hex(16))
