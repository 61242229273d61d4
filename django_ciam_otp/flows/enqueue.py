"""Step 6 of a send: hand the stored token to its delivery (the outbox, a task, or inline).

Runs inside the issuing step's transaction (``issuing.issue``), because where
the hand-off happens depends on it. On its own (the usual case, with Celery),
the token row is the outbox: its sealed message is stored with it
(``delivery_envelope``), and once the row commits ``dispatch.wake`` makes sure
a run of the batch task will take it, publishing only when none is pending.
Inside a caller's transaction (``ATOMIC_REQUESTS``) the outer commit may come
too late to answer 503, so a task of its own is published at once from the
savepoint that a broker failure rolls back (token and quota with it); its
envelope says so (``"w"``), and the worker looks again a moment later while
the row is not visible. A database without ``UPDATE … RETURNING`` has no
outbox (a task per token, at commit). Inline delivery has no broker to fail:
it always waits for the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from .. import crypto, dispatch, sql
from ..models import DeliveryStatus, OTPToken


@dataclass(frozen=True)
class Handoff:
    """How this send's token reaches its delivery: now (``nested``) or at commit."""

    nested: bool
    #: The sealed payload: the plain code leaves this process only inside it.
    envelope: str
    #: Stored on the token row for the batch task (``dispatch.wake``), not in a task.
    outbox: bool = False
    #: Until when (``time.monotonic()``) the wake-up flag the send's count read certainly
    #: exists: ``dispatch.wake`` needs no ``SET NX`` before then (0.0: not known).
    wake_flag_until: float = 0.0


def prepare(payload: dict[str, Any], using: str, wake_flag_until: float = 0.0) -> Handoff:
    """Decide the hand-off before the transaction opens (it asks about the caller's)."""
    celery = dispatch.delivery_mode() == dispatch.CELERY
    nested = celery and in_callers_transaction(using)
    outbox = celery and not nested and sql.update_returning_supported(connections[using])
    envelope = crypto.seal({**payload, "w": 1} if nested else payload)
    return Handoff(nested, envelope, outbox, wake_flag_until)


def stage(token: OTPToken, handoff: Handoff) -> None:
    """Before the token is saved: a queued outbox token carries its sealed message."""
    if handoff.outbox and token.delivery_status == DeliveryStatus.QUEUED:
        token.delivery_envelope = handoff.envelope


def schedule(token: OTPToken, handoff: Handoff, using: str) -> None:
    """Inside the issuing transaction: publish now (nested) or when it commits.

    An outbox token wakes the batch task whatever its delivery status: a
    suppressed reset (nothing to send) then costs what a real one does.
    """
    if handoff.nested:
        hand_off(token, handoff.envelope)
    elif handoff.outbox:
        transaction.on_commit(lambda: dispatch.wake(token, handoff.wake_flag_until), using=using)
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
