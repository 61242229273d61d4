"""What every delivery backend receives and may raise.

Backends are small template-method classes (as in django-anymail): the base
class renders the message text from templates and calls one provider hook.
A backend reports a failure by raising :class:`TransientDeliveryError` (the
task retries with backoff) or :class:`PermanentDeliveryError` (the token is
marked failed and its quota given back). Anything else counts as transient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OTPMessage:
    """One code to deliver. ``recipient`` is an E.164 number or an email address."""

    channel: str
    recipient: str
    code: str
    usage: str
    validity_seconds: int
    language: str = "en"
    token_id: int | None = None

    @property
    def validity_minutes(self) -> int:
        """Whole minutes, rounded up, as people read them ("valid for 1 minute")."""
        return max(1, -(-self.validity_seconds // 60))

    def template_context(self) -> dict[str, Any]:
        from ..models import Usage

        return {
            "code": self.code,
            "usage": self.usage,
            "usage_display": Usage(self.usage).label,
            "validity_seconds": self.validity_seconds,
            "validity_minutes": self.validity_minutes,
            "recipient": self.recipient,
        }

    def __repr__(self) -> str:  # never show the code in a traceback or log line
        return (
            f"OTPMessage(channel={self.channel!r}, usage={self.usage!r}, "
            f"token_id={self.token_id!r})"
        )


class DeliveryError(Exception):
    """Base class of delivery failures; ``reason`` is a short, code-free text for the token log."""

    def __init__(self, reason: str, *, provider_code: str | None = None) -> None:
        self.reason = reason[:200]
        self.provider_code = provider_code
        super().__init__(self.reason)


class TransientDeliveryError(DeliveryError):
    """Worth retrying: timeouts, throttling, provider 5xx."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: bad number, unapproved template, wrong credentials."""


class BaseBackend:
    """Common constructor for SMS and email backends."""

    def __init__(self, **kwargs: Any) -> None:
        self.options = kwargs

    def send(self, message: OTPMessage) -> str:
        """Deliver ``message``; return the provider's message id (or ``""``)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where messages go, for the log line of a backend's first failure (no secrets)."""
        return f"{type(self).__module__}.{type(self).__qualname__}"
