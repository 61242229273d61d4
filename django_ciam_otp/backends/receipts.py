"""Authenticating status callbacks that carry no signature: a shared secret in the URL.

Tencent Cloud SMS and Alibaba Cloud's HTTP push sign nothing, so the only proof
that a callback is theirs is a secret only they were given: the receipts URL a
site enters in their console carries ``?secret=<RECEIPT_SECRET>``. It is
compared in constant time; a request without it, or with another, is refused
(403) before its body is read. Keep query strings of ``/otp/receipts/`` out of
access logs, as for any URL that carries a credential.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import Receipt, ReceiptMalformed, ReceiptRefused

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

#: The query parameter holding the shared secret.
SECRET_PARAMETER = "secret"


def require_shared_secret(request: HttpRequest, secret: str | None) -> None:
    """Raise :class:`ReceiptRefused` unless ``request`` carries ``secret`` (unset: refuse all)."""
    given = request.GET.get(SECRET_PARAMETER, "")
    if not secret or not given:
        raise ReceiptRefused("no shared secret")
    if not hmac.compare_digest(given.encode(), str(secret).encode()):
        raise ReceiptRefused("wrong shared secret")


def readable(
    items: list[object], read: Callable[[object, int], Receipt], provider: str
) -> list[Receipt]:
    """The receipts of a batch whose reports each ``read`` can read; the rest are skipped.

    One unreadable report must not cost the batch: the provider would push it
    again and again, good reports included, then drop them all. A batch of
    which none can be read is malformed (400).
    """
    found: list[Receipt] = []
    skipped = 0
    for index, item in enumerate(items):
        try:
            found.append(read(item, index))
        except ReceiptMalformed:
            skipped += 1
    if skipped:
        if not found:
            raise ReceiptMalformed(f"none of {skipped} reports can be read")
        logger.info(
            "%s delivery receipts: %d of %d reports unreadable, skipped",
            provider,
            skipped,
            len(items),
        )
    return found
