"""USER_LOOKUP callables used by the tests."""

from __future__ import annotations

from typing import Any

USED_PHONES = {"+8613900001111"}


class PhoneUser:
    def __init__(self, phone_number: str) -> None:
        self.phone_number = phone_number


def phone_lookup(channel: str, recipient: str) -> Any | None:
    if channel == "sms" and recipient in USED_PHONES:
        return PhoneUser(recipient)
    return None


def phone_address(user: Any, channel: str) -> str | None:
    """``USER_ADDRESS`` for :func:`phone_lookup`'s users."""
    return getattr(user, "phone_number", None) if channel == "sms" else None
