"""An email backend that builds each message as SMTP would send it, then drops it.

Django's locmem backend does the same work (``message.message()``: the MIME
message, headers and encoded parts) and keeps every message in a list that
grows for the whole run; this one keeps nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage


class RenderingNullBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            message.message().as_bytes()
        return len(email_messages)
