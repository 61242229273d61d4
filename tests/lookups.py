"""USER_LOOKUP callables used by the tests."""

from __future__ import annotations

from typing import Any

USED_PHONES = {"+8613900001111"}


def phone_lookup(channel: str, recipient: str) -> Any | None:
    if channel == "sms" and recipient in USED_PHONES:
        return object()
    return None
