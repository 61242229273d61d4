"""Step 6 of a send: hand the stored token to its delivery (a Celery task, or inline).

Runs inside the issuing step's transaction (``issuing.issue``), because where
the hand-off happens depends on it: on its own, the task is published when
the token's transaction commits (the worker must find the row). Inside a
caller's transaction (``ATOMIC_REQUESTS``) the outer commit may come too late
to answer 503, so the task is published at once from the savepoint that a
broker failure rolls back (token and quota with it); its envelope says so
(``"w"``), and the worker looks again a moment later while the row is not
visible. Inline delivery has no broker to fail: it always waits for the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from .. import crypto, dispatch
from ..models import OTPToken


@dataclass(frozen=True)
class Handoff:
    """How this send's token reaches its delivery: now (``nested``) or at commit."""

    nested: bool
    #: The sealed payload: the plain code leaves this process only inside it.
    envelope: str


def prepare(payload: dict[str, Any], using: str) -> Handoff:
    """Decide the hand-off before the transaction opens (it asks about the caller's)."""
    nested = dispatch.delivery_mode() == dispatch.CELERY and in_callers_transaction(using)
    return Handoff(nested, crypto.seal({**payload, "w": 1} if nested else payload))


def schedule(token: OTPToken, handoff: Handoff, using: str) -> None:
    """Inside the issuing transaction: publish now (nested) or when it commits."""
    if handoff.nested:
        hand_off(token, handoff.envelope)
    else:
        transaction.on_commit(lambda: hand_off(token, handoff.envelope), using=using)


def hand_off(token: OTPToken, envelope: str) -> None:
    """Hand the code to its delivery: a Celery task or inline (``dispatch.delivery_mode``)."""
    if dispatch.delivery_mode() == dispatch.INLINE:
        dispatch.deliver_inline(token, envelope)
    else:
        dispatch.publish(token, envelope)


def in_callers_transaction(using: str) -> bool:
    """Whether the caller holds a transaction open (``ATOMIC_REQUESTS``, ``atomic()``).

    Asked the way Django's ``durable`` blocks ask it, so the transactions a
    ``TestCase`` wraps each test in do not count: tests see what production
    sees outside a caller's transaction.
    """
    if not transaction.get_connection(using).in_atomic_block:
        return False
    try:  # no savepoint: the durable check alone, no statement sent
        with transaction.atomic(using=using, savepoint=False, durable=True):
            return False
    except RuntimeError:
        return True
