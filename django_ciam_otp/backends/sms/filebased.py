"""SMS backend that writes each message to its own file.

For development and staging machines where no SMS account exists but a person
(or an end-to-end test) must read the code: like Django's file email backend,
but one file per message, so a test can pick up exactly the message it caused.

Each file is UTF-8 text named ``<UTC timestamp>-<random hex>.txt`` (so a plain
``ls`` lists them in sending order and two workers never collide), and reads::

    To: +8613612345678
    Usage: login
    Date: 2025-01-31T08:15:42.123456+00:00

    Your verification code for Log in is 123456. It is valid for 1 minute. ...

Header lines, one blank line, then the text exactly as it would be sent. Files
are created readable by their owner only, because they hold live codes.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ..base import OTPMessage, TransientDeliveryError
from ..settings import backend_setting
from .base import BaseSMSBackend

#: Where the directory is set, for the error and the check that name it.
SETTING = "SMS_FILE_PATH"


class SMSBackend(BaseSMSBackend):
    """Write each message to a new file under ``file_path`` (or ``SMS_FILE_PATH``).

    Returns the file name as the provider message id.
    """

    def __init__(self, **kwargs: Any) -> None:
        path: str | os.PathLike[str] = backend_setting(
            "file_path", backend=self, kwargs=kwargs, setting=SETTING
        )
        super().__init__(**kwargs)
        if not path:
            raise ImproperlyConfigured(
                "The filebased SMS backend needs a directory: set CIAM_OTP['SMS_FILE_PATH']."
            )
        self.file_path = Path(path).expanduser().resolve()
        # Fail at construction, as Django's file email backend does, so a bad
        # path surfaces as a configuration error rather than a delivery retry.
        if self.file_path.exists() and not self.file_path.is_dir():
            raise ImproperlyConfigured(
                f"CIAM_OTP['SMS_FILE_PATH'] ({self.file_path}) exists and is not a directory."
            )
        try:
            self.file_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Could not create the SMS directory {self.file_path}: {exc.strerror}"
            ) from exc
        if not os.access(self.file_path, os.W_OK):
            raise ImproperlyConfigured(f"The SMS directory {self.file_path} is not writable.")

    @classmethod
    def check(cls, **kwargs: Any) -> list[checks.CheckMessage]:
        """E008: no directory, so every message would fail (a subclass may supply one)."""
        messages = super().check(**kwargs)
        try:
            path = backend_setting("file_path", backend=cls, kwargs={}, setting=SETTING)
        except ImproperlyConfigured:
            path = None
        if not path:
            messages.append(
                checks.Error(
                    "The filebased SMS backend needs CIAM_OTP['SMS_FILE_PATH'].",
                    id="ciam_otp.E008",
                )
            )
        return messages

    def _new_file_name(self) -> str:
        now = dt.datetime.now(dt.UTC)
        return f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(4)}.txt"

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        name = self._new_file_name()
        content = (
            f"To: {phone_number}\n"
            f"Usage: {message.usage}\n"
            f"Date: {dt.datetime.now(dt.UTC).isoformat()}\n"
            f"\n"
            f"{text}\n"
        )
        try:
            # O_EXCL: never overwrite another message, even on a name collision.
            fd = os.open(self.file_path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(content)
        except OSError as exc:
            raise TransientDeliveryError(f"could not write SMS file: {exc.strerror}") from exc
        return name
