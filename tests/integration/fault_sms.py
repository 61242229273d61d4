"""An SMS provider that fails on cue, for the worker in the integration tests.

It is the filebased backend (one file per delivered message, so a test counts
deliveries by counting files) plus a script per phone number, read from
``$FAULT_SMS_CONTROL/<number>.plan``: one instruction per line, each consumed
by one delivery attempt, in order:

``transient``   raise ``TransientDeliveryError`` (the provider throttled us)
``permanent``   raise ``PermanentDeliveryError`` (the number is invalid)
``sleep N``     write ``<number>.sending`` (with the worker's pid), sleep N seconds,
                then deliver; a test kills the worker during the sleep

Attempts without a line left deliver normally. Every attempt is logged to
``<number>.attempts`` as ``<unix time> <pid> <instruction>``, so a test can
check the backoff between retries. The plan file is read and rewritten under
an exclusive ``flock``, as the prefork pool runs attempts in several processes.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

from django_ciam_otp.backends.base import OTPMessage, PermanentDeliveryError, TransientDeliveryError
from django_ciam_otp.backends.sms import filebased


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
