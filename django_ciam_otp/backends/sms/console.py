"""SMS backend that prints each message to a stream (stdout by default).

The default backend, for development: like Django's console email backend it
needs no account and shows the code right in the runserver or worker log. Never
use it in production, where it would write codes into the logs.
"""

from __future__ import annotations

import sys
import threading
import uuid
from typing import Any, TextIO

from ..base import OTPMessage
from .base import BaseSMSBackend


class SMSBackend(BaseSMSBackend):
    """Write ``To: <number>`` and the text, then a separator line, to ``stream``.

    A lock keeps messages from concurrent threads (a threaded dev server, a
    Celery worker with the threads pool) from interleaving on the stream.
    """

    delivers = False  # writes codes into a log, delivers nothing: ciam_otp.W011 in production

    def __init__(self, *, stream: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stream = stream
        self._lock = threading.RLock()

    @property
    def stream(self) -> TextIO:
        # Looked up at send time, not import time, so captured/redirected
        # stdout (pytest's capsys, contextlib.redirect_stdout) is honoured.
        return self._stream if self._stream is not None else sys.stdout

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        message_id = f"console-{uuid.uuid4()}"
        with self._lock:
            stream = self.stream
            stream.write(f"To: {phone_number}\nMessage-ID: {message_id}\n\n{text}\n")
            stream.write("-" * 79 + "\n")
            stream.flush()
        return message_id
