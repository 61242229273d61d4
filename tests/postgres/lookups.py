"""Sites' own ``USER_LOOKUP`` callables that trust the database's case folding.

The library must not: whatever a site's look-up returns, a code for an
account goes only to an address that is canonically the account's own.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Value
from django.db.models.functions import Lower


def find_by_iexact(channel: str, recipient: str) -> Any | None:
    """``email__iexact``: PostgreSQL compares ``UPPER(email) = UPPER(recipient)``."""
    if channel != "email":
        return None
    return get_user_model()._default_manager.filter(email__iexact=recipient).first()


def find_by_lower(channel: str, recipient: str) -> Any | None:
    """``LOWER(email) = LOWER(recipient)``: glibc folds ``İ`` to ``i``, ICU the Kelvin sign."""
    if channel != "email":
        return None
    users = get_user_model()._default_manager.annotate(email_lower=Lower("email"))
    return users.filter(email_lower=Lower(Value(recipient))).first()
