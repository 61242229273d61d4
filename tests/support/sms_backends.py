"""Scripted SMS backends for the failover, circuit and receipt tests.

Each one answers every message the same way (sends it, fails transiently,
cannot reach the region, is misconfigured, finds the number invalid), so a
test configures a route out of them in ``SMS_BACKENDS`` and reads which were
called. Usable in the test process and in a separate Celery worker alike:

* in-process, every call is appended to :data:`journal`;
* across processes, a backend given a directory (the ``calls_dir`` option,
  else the :data:`CALLS_DIR_ENV` environment variable) also appends one line
  per call to ``<directory>/<backend name>.calls``, which :func:`read_calls`
  reads back from the test process.

Messages that "go out" land in the locmem outbox (``sms_outbox``), as with
the locmem backend, so tests read codes and message ids from one place.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django.http import JsonResponse

from django_ciam_otp.backends.base import (
    Accepted,
    BackendMisconfigured,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptMalformed,
    TransientDeliveryError,
)
from django_ciam_otp.backends.receipts import require_shared_secret
from django_ciam_otp.backends.settings import backend_setting
from django_ciam_otp.backends.sms import locmem

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

#: The environment variable naming the directory call logs go to (a worker's environment).
CALLS_DIR_ENV = "CIAM_OTP_TEST_SMS_CALLS_DIR"


@dataclass(frozen=True)
class Call:
    """One message handed to a backend."""

    backend: str
    token_id: int | None
    attempt: int
    recipient: str

    def line(self) -> str:
        return f"{self.backend} {self.token_id} {self.attempt} {self.recipient}\n"

    @classmethod
    def parse(cls, line: str) -> Call:
        backend, token_id, attempt, recipient = line.split()
        return cls(backend, None if token_id == "None" else int(token_id), int(attempt), recipient)


#: Every call in this process, oldest first (tests clear it).
journal: list[Call] = []


def read_calls(directory: str | os.PathLike[str], name: str) -> list[Call]:
    """The calls backend ``name`` logged under ``directory`` (from any process)."""
    path = Path(directory) / f"{name}.calls"
    if not path.exists():
        return []
    return [Call.parse(line) for line in path.read_text().splitlines() if line.strip()]


def called(name: str | None = None) -> list[Call]:
    """This process's calls, of backend ``name`` or all."""
    return [call for call in journal if name is None or call.backend == name]


class ScriptedSMSBackend(locmem.SMSBackend):
    """Logs every call, then does what :meth:`answer` says (by default: sends, to the outbox)."""

    delivers = True  # stands in for a provider: no ciam_otp.W011 in the checks tests

    def __init__(self, **kwargs: Any) -> None:
        self.calls_dir: str | None = backend_setting(
            "calls_dir", backend=self, kwargs=kwargs, default=None
        ) or os.environ.get(CALLS_DIR_ENV)
        super().__init__(**kwargs)

    def send(self, message: OTPMessage) -> str | Accepted:
        call = Call(self.name, message.token_id, message.attempt, message.recipient)
        journal.append(call)
        if self.calls_dir:
            # One short O_APPEND write per call: lines of concurrent workers do not interleave.
            with open(Path(self.calls_dir) / f"{self.name}.calls", "a") as log:
                log.write(call.line())
        return self.answer(message)

    def answer(self, message: OTPMessage) -> str | Accepted:
        return super().send(message)


class Delivering(ScriptedSMSBackend):
    """Sends every message (to the locmem outbox)."""

    default_name = "delivering"


class AlwaysTransient(ScriptedSMSBackend):
    """Times out on every message (option ``retry_after``: the wait it asks for)."""

    default_name = "always_transient"

    def __init__(self, **kwargs: Any) -> None:
        self.retry_after: float | None = backend_setting(
            "retry_after", backend=self, kwargs=kwargs, default=None
        )
        super().__init__(**kwargs)

    def answer(self, message: OTPMessage) -> str:
        raise TransientDeliveryError(
            "provider timed out", provider_code="Timeout", retry_after=self.retry_after
        )


class Unclear(ScriptedSMSBackend):
    """Times out reading every answer: the provider may have taken the message."""

    default_name = "unclear"

    def answer(self, message: OTPMessage) -> str:
        raise TransientDeliveryError("read timed out", provider_code="ReadTimeout", unclear=True)


class NumberLimited(ScriptedSMSBackend):
    """Refuses every message under a per-number limit (as Tencent's 30 seconds)."""

    default_name = "number_limited"

    def answer(self, message: OTPMessage) -> str:
        raise TransientDeliveryError(
            "number limit", provider_code="PerNumber", retry_after=31, recipient_scoped=True
        )


class Interrupted(ScriptedSMSBackend):
    """Runs into the delivery task's soft time limit."""

    default_name = "interrupted"

    def answer(self, message: OTPMessage) -> str:
        from celery.exceptions import SoftTimeLimitExceeded

        raise SoftTimeLimitExceeded()


class Crashing(ScriptedSMSBackend):
    """Raises what no backend classified (an SDK's own bug)."""

    default_name = "crashing"

    def answer(self, message: OTPMessage) -> str:
        raise RuntimeError("SDK blew up")


class NotHere(ScriptedSMSBackend):
    """Cannot reach any number: its account is enabled for no region."""

    default_name = "not_here"

    def answer(self, message: OTPMessage) -> str:
        raise NotDeliverableHere("region not enabled", provider_code="RegionNotEnabled")


class Misconfigured(ScriptedSMSBackend):
    """Refuses every message: its credentials are wrong."""

    default_name = "misconfigured"

    def answer(self, message: OTPMessage) -> str:
        raise BackendMisconfigured("secret id not found", provider_code="AuthFailure")


class RecipientPermanent(ScriptedSMSBackend):
    """Finds every number invalid: the recipient's failure, which no other backend would fix."""

    default_name = "recipient_permanent"

    def answer(self, message: OTPMessage) -> str:
        raise PermanentDeliveryError("number does not exist", provider_code="InvalidNumber")


class Reporting(ScriptedSMSBackend):
    """Sends every message and takes its provider's receipts, authenticated by a shared secret.

    The receipts URL carries ``?secret=<secret>`` (option ``secret``; unset, every
    callback is refused). The body is JSON: ``{"receipts": [{"id": <message id>,
    "status": "DELIVRD" | anything else}]}``; the answer is ``{"result": 0, "taken": n}``.
    """

    default_name = "reporting"
    receives_receipts: ClassVar[bool] = True

    def __init__(self, **kwargs: Any) -> None:
        self.secret: str | None = backend_setting(
            "secret", backend=self, kwargs=kwargs, default=None
        )
        super().__init__(**kwargs)

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        require_shared_secret(request, self.secret)
        try:
            body = json.loads(request.body)
            return [
                Receipt(
                    message_id=str(item["id"]),
                    delivered=item["status"] == "DELIVRD",
                    status=str(item["status"]),
                )
                for item in body["receipts"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ReceiptMalformed(type(exc).__name__) from exc

    def receipts_response(self, request: HttpRequest, receipts: list[Receipt]) -> HttpResponse:
        return JsonResponse({"result": 0, "taken": len(receipts)})
