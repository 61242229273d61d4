"""Step 5 of a send: the quota, the token row and the delivery hand-off — all or nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import router, transaction
from django.utils import timezone, translation

from .. import crypto, ratelimits
from ..conf import otp_settings
from ..exceptions import InsufficientEmailQuota, InsufficientSMSQuota, TemporarilyUnavailable
from ..models import DeliveryStatus, OTPClient, OTPToken, Quota
from . import counting, enqueue, quotas
from .eligibility import Eligibility
from .policy import CodePolicy
from .shape import SendRequest


@dataclass(frozen=True)
class NewToken:
    """A token not yet saved, its raw ``otp_token`` and what its delivery task needs."""

    token: OTPToken
    raw_token: str
    #: The plain code leaves this process only inside the sealed envelope.
    payload: dict[str, Any]


def new_token(
    client: OTPClient,
    ask: SendRequest,
    policy: CodePolicy,
    who: Eligibility,
    recipient_hash: str,
) -> NewToken:
    raw_token = crypto.new_otp_token()
    code = who.test_code or crypto.new_code(policy.code_length)
    now = timezone.now()
    token_hash = crypto.hash_token(raw_token)
    token = OTPToken(
        token_hash=token_hash,
        client=client,
        auth_source_id=policy.auth_source.pk if policy.auth_source is not None else None,
        channel=ask.recipient.channel,
        usage=ask.usage,
        recipient_hash=recipient_hash,
        recipient_masked=crypto.mask_recipient(ask.recipient.key),
        code_hash=crypto.hash_code(token_hash, code),
        code_length=policy.code_length,
        code_expires_at=now
        + dt.timedelta(seconds=min(policy.code_validity, otp_settings.TOKEN_TTL)),
        expires_at=now + dt.timedelta(seconds=otp_settings.TOKEN_TTL),
        delivery_status=(
            DeliveryStatus.TEST
            if who.test_code is not None
            else DeliveryStatus.SUPPRESSED
            if who.suppressed
            else DeliveryStatus.QUEUED
        ),
        is_test=who.test_code is not None,
        language=ask.language or translation.get_language() or "",
        created_at=now,
    )
    payload = {"h": token_hash[:16], "c": code, "r": who.address}
    return NewToken(token, raw_token, payload)


def issue(
    new: NewToken, client: OTPClient, who: Eligibility, charge: ratelimits.SendCharge
) -> None:
    """Take the quota, store the token and hand it to delivery; undo everything on refusal."""
    try:
        wake_flag_until = counting.wake_flag_until(charge)
        _issue(new, client, counted=who.counted, deliver=who.deliver, wake=wake_flag_until)
    except (InsufficientSMSQuota, InsufficientEmailQuota):
        charge.recipient.refund()
        raise
    except TemporarilyUnavailable:
        if _undo(new.token, charge):
            raise
        # A run of the batch task already took the token from the outbox: the code is on
        # its way, so the send stands (its quota and counters stay used).
    if charge.marker_was_set:
        # Earlier pending tokens of (client, recipient, usage) become unusable. Skipped (one
        # UPDATE less) when the sent marker proves this is the first send to them within a
        # token's lifetime; should the marker be lost (Redis restarted), verification still
        # refuses a token that has a newer sibling (``OTPToken.objects.with_newer_flag``).
        OTPToken.objects.supersede_older(new.token)


def _issue(
    new: NewToken, client: OTPClient, *, counted: bool, deliver: bool, wake: float = 0.0
) -> None:
    """A suppressed reset (``counted`` but not ``deliver``) runs the same quota
    statement taking nothing and publishes a task that finds nothing to send,
    so its answer, its refusals and its timing are a real reset's. The
    hand-off to delivery is the next step (``enqueue``), run in this
    transaction: a broker failure must roll the token and the quota back
    (inside a caller's transaction), or :func:`issue` undoes them (after the
    commit). ``wake``: until when the wake-up flag the send's count read is
    certain to exist (``counting.wake_flag_until``; ``dispatch.wake``).
    """
    token = new.token
    using = router.db_for_write(OTPToken)
    handoff = enqueue.prepare(new.payload, using, wake)
    # Outside any transaction on PostgreSQL, the quota and the token are one statement that
    # is all or nothing by itself: a transaction around it would only add a BEGIN and a
    # COMMIT (``quotas.needs_no_transaction``). A caller's transaction keeps its savepoint.
    alone = counted and quotas.needs_no_transaction(using)
    with contextlib.nullcontext() if alone else transaction.atomic(using=using):
        if counted:
            enqueue.stage(token, handoff)
            quotas.consume_quota_and_store(client, token, count=1 if deliver else 0)
            enqueue.schedule(token, handoff, using)
        else:
            token.save(force_insert=True)


def _undo(token: OTPToken, charge: ratelimits.SendCharge) -> bool:
    """The task could not be queued: leave nothing consumed (no token, no quota, no counters).

    ``False`` (nothing undone) when a run of the batch task claimed the outbox token
    meanwhile: its code is being sent, and the send must answer as sent.
    """
    if token.pk is not None:
        if not OTPToken.objects.withdraw(token.pk):
            return False
        Quota.objects.give_back(token)
        OTPToken.objects.discard(token.pk)
    charge.refund_all()
    return True
