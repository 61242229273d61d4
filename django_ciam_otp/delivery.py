"""Delivering one token's code: the rules the Celery task follows.

Kept out of ``tasks.py`` so they can be tested without a worker and so the
task stays a thin wrapper. Guarantees:

* a token is delivered at most once: the worker claims it with a conditional
  UPDATE, and a redelivered task (``acks_late``) finds it already sent, or,
  while the claim of a worker that may still be sending is younger than
  ``DELIVERY_CLAIM_LEASE``, comes back when the claim has run out;
* nothing is sent after the code's validity (the task also carries ``expires``);
* transient provider errors are retried with exponential backoff and full
  jitter, all within the code's validity; a failure for good marks the token
  failed and gives its quota back;
* a delivery whose task never ran (Celery dropped it because it arrived after
  its ``expires``, or the broker lost it) is found by
  :func:`expire_stale_deliveries`, run with the purge task, and gives its
  quota back too.

Cost: a delivery is two statements, each its own commit (the claim must be
committed before the provider is called): one ``UPDATE … RETURNING`` that
claims the token and loads the columns the message needs, and the ``UPDATE``
recording the outcome (``OTPToken.objects.claim_for_delivery()`` and
``.mark_sent()``; every move of a token is an ``OTPToken.objects`` method,
drawn in ``docs/token-states.md``). Only a claim that fails (already sent, claimed by a
live worker, expired, not pending) reads the row to find out why. Databases
without ``UPDATE … RETURNING`` (MySQL, SQLite < 3.35) read the row first.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from . import crypto, failover, metrics, signals, tracing
from .backends.base import Accepted, BaseBackend, OTPMessage
from .conf import otp_settings
from .managers import FINISHED_DELIVERIES
from .models import Channel, DeliveryStatus, OTPToken, Quota, TokenStatus

logger = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
BACKOFF_CAP = 20.0


#: Publishes a retry's own task in ``countdown`` seconds; whether it could (``outbox``).
HandOver = Callable[[float], bool]


@dataclass(frozen=True)
class RetryLater:
    """Run the task again in ``countdown`` seconds.

    ``counts`` is False when nothing failed (another worker's claim is still
    live): such a wait does not use up one of the ``DELIVERY_MAX_RETRIES``.
    """

    countdown: float
    counts: bool = True


def claim_lease() -> dt.timedelta:
    """How long a worker's claim protects a delivery in progress."""
    return dt.timedelta(seconds=otp_settings.DELIVERY_CLAIM_LEASE)


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff (AWS architecture blog), in seconds."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))  # noqa: S311


def deliver(token_id: int, envelope: str, *, attempt: int = 0) -> RetryLater | None:
    """Send the code for ``token_id``; return :class:`RetryLater` to be called again.

    In an OpenTelemetry span ``ciam_otp.deliver`` when tracing is on.
    """
    with tracing.span("ciam_otp.deliver", token_id=token_id, attempt=attempt):
        return _deliver(token_id, envelope, attempt)


def _deliver(token_id: int, envelope: str, attempt: int) -> RetryLater | None:
    now = timezone.now()
    lease = claim_lease()
    try:
        payload: dict[str, Any] | None = crypto.unseal(envelope)
    except ValueError:
        payload = None
    token = (
        OTPToken.objects.claim_for_delivery(token_id, now=now, lease=lease)
        if payload is not None
        else None
    )
    if token is not None and payload is not None:
        if payload.get("h") != token.token_hash[:16]:
            mark_failed(token, "envelope could not be opened (hash key changed?)")
            return None
        return _send(token, payload, attempt, now)
    return _deliver_unclaimed(token_id, payload, attempt, now, lease)


def deliver_now(token_id: int, envelope: str) -> None:
    """Deliver in this process, retrying transient failures in place, without waiting.

    For eager Celery tasks and ``DELIVERY = "inline"``: there is no broker to
    hold a countdown. A live claim elsewhere (``counts=False``) is that
    worker's job, so it is not waited for. A provider that named a window
    longer than backoff ever waits (``retry_after``: Tencent's 30 seconds per
    number) would refuse every immediate retry, and the request cannot sleep
    that long: the delivery fails at once, quota back.
    """
    attempt = 0
    outcome = deliver(token_id, envelope, attempt=attempt)
    while outcome is not None and outcome.counts:
        if outcome.countdown > BACKOFF_CAP:
            token = OTPToken.objects.filter(pk=token_id).first()
            if token is not None:
                mark_failed(
                    token,
                    f"gave up: the provider asks to wait {outcome.countdown:.0f} s, "
                    "which delivery in this process cannot (use Celery)",
                )
            return
        attempt += 1
        outcome = deliver(token_id, envelope, attempt=attempt)


def _deliver_unclaimed(
    token_id: int,
    payload: dict[str, Any] | None,
    attempt: int,
    now: dt.datetime,
    lease: dt.timedelta,
) -> RetryLater | None:
    """The one-statement claim did not take the token (or could not be tried): find out why.

    Finished: nothing to do. No longer usable: expired, quota back. Envelope
    unreadable: failed, quota back. Otherwise claim it with a conditional
    ``UPDATE`` (the only claim on databases without ``UPDATE … RETURNING``)
    and send, or wait out another worker's live claim.
    """
    token = OTPToken.objects.filter(pk=token_id).first()
    if token is None:
        return _not_visible_yet(token_id, attempt) if payload and payload.get("w") else None
    if token.delivery_status in FINISHED_DELIVERIES:
        return None
    if token.status != TokenStatus.PENDING or now >= token.code_expires_at:
        close_unusable(token)
        return None
    if payload is None or payload.get("h") != token.token_hash[:16]:
        mark_failed(token, "envelope could not be opened (hash key changed?)")
        return None

    if not OTPToken.objects.claim_read(token.pk, now=now, lease=lease):
        return _claimed_elsewhere(token.pk, now, lease)
    return _send(token, payload, attempt, now)


def close_unusable(token: OTPToken) -> None:
    """A token that can no longer be verified (closed, or its code expired) sends nothing:
    its delivery expires and its quota comes back."""
    if OTPToken.objects.expire_unsent(token.pk, "not sent: code no longer usable"):
        metrics.delivery(token.delivery_backend, token.channel, "expired")
    Quota.objects.give_back(token)


#: How often a task looks again for a token it cannot see (about a minute in all).
UNSEEN_TOKEN_TRIES = 16


def _not_visible_yet(token_id: int, attempt: int) -> RetryLater | None:
    """No such token yet, for a task published before its token committed: look again soon.

    A send inside the caller's own transaction (``ATOMIC_REQUESTS``)
    publishes its task before that transaction commits (its envelope says
    ``"w"``), so the worker can run before the row is visible; it looks again
    with a growing pause, for about a minute. If the caller's transaction rolled back,
    there is nothing to send and the task ends after its last look (Celery's
    ``expires``, the code's validity, usually ends it sooner).
    """
    if attempt >= UNSEEN_TOKEN_TRIES:
        logger.info("OTP delivery dropped: token %s never became visible", token_id)
        return None
    return RetryLater(countdown=min(5.0, 0.25 * 2**attempt), counts=False)


def _send(
    token: OTPToken, payload: dict[str, Any], attempt: int, claimed_at: dt.datetime
) -> RetryLater | None:
    """Offer the message to its route's backends (``failover.py``) for a token this run
    has claimed; record the outcome."""
    offered = offer_token(token, payload, attempt)
    if offered.result is not failover.Result.SENT:
        return settle_unsent(token, offered, attempt, claimed_at)
    accepted = offered.accepted or Accepted("")
    if not OTPToken.objects.mark_sent(
        token.pk,
        message_id=accepted.message_id,
        fee=accepted.fee,
        region=accepted.region or "",
        backend=offered.backend,
        claimed_at=claimed_at,
    ):
        report_outlived_claim(token, offered.backend)
        return None
    record_delivered(token, offered.backend)
    return None


def offer_token(
    token: OTPToken, payload: dict[str, Any], attempt: int, *, elapsed: float = 0.0
) -> failover.Offer:
    """The token's message, offered along its route; ``elapsed``: of the task's time, used."""
    message = OTPMessage(
        channel=token.channel,
        recipient=payload["r"],
        code=payload["c"],
        usage=token.usage,
        validity_seconds=max(1, int((token.code_expires_at - token.created_at).total_seconds())),
        language=token.language or "en",
        token_id=token.pk,
        attempt=attempt,
        previous_error=token.delivery_error_code or None,
    )
    # A queued token's delivery_backend is where its retry starts (failover.Offer.resume).
    offered = failover.offer(
        message,
        report_failure=_report_first_failure,
        start=token.delivery_backend,
        elapsed=elapsed,
    )
    for moved_on in offered.tries[:-1]:  # each backend the message left for the next
        metrics.delivery(moved_on.name, token.channel, "failover")
    return offered


def settle_unsent(
    token: OTPToken,
    offered: failover.Offer,
    attempt: int,
    claimed_at: dt.datetime,
    *,
    hand_over: HandOver | None = None,
) -> RetryLater | None:
    """No backend took the message: failed for good, or a retry later."""
    if offered.result is failover.Result.FAILED:
        mark_failed(token, offered.reason, backend=offered.backend)
        return None
    return _retry_or_fail(
        token,
        offered.reason,
        attempt,
        code=offered.code,
        at_least=offered.retry_after,
        backend=offered.backend,
        resume=offered.resume,
        claimed_at=claimed_at,
        hand_over=hand_over,
    )


def report_outlived_claim(token: OTPToken, backend: str) -> None:
    logger.error(
        "OTP delivery for token %s outlived its claim (DELIVERY_CLAIM_LEASE): sent through "
        "%s, but another run holds the token now; its outcome stands",
        token.pk,
        backend,
    )


def record_delivered(token: OTPToken, backend: str) -> None:
    """A recorded send: its metrics, its span and its log line."""
    latency = (timezone.now() - token.created_at).total_seconds()
    metrics.delivery(backend, token.channel, "sent", latency)
    tracing.annotate_current(backend=backend, channel=token.channel, outcome="sent")
    logger.info(
        "OTP delivered: token %s to %s through %s", token.pk, token.recipient_masked, backend
    )


def _claimed_elsewhere(token_id: int, now: dt.datetime, lease: dt.timedelta) -> RetryLater | None:
    """Another claim holds the token: finished (nothing to do) or in progress (look again later).

    A task redelivered because its worker died finds that worker's claim. The
    worker may have been killed before the provider accepted the message, so
    dropping the task would lose the code; sending at once could send it twice.
    Coming back when the lease has run out does neither: if the first worker
    was alive it has finished by then, and this run finds the token sent.
    """
    current = (
        OTPToken.objects.filter(pk=token_id)
        .values_list("delivery_status", "delivery_started_at")
        .first()
    )
    if current is None or current[0] != DeliveryStatus.SENDING or current[1] is None:
        return None
    left = (current[1] + lease - now).total_seconds()
    return RetryLater(countdown=max(0.0, left) + random.uniform(0.1, 1.0), counts=False)  # noqa: S311


#: Backends (by description) whose first failure this process has logged.
_REPORTED: set[str] = set()


def _report_first_failure(backend: BaseBackend | None, channel: str, exc: BaseException) -> str:
    """Log a backend's first failure in this process once, at ERROR, with where it sends.

    A site whose SMTP server is unreachable answers every send with 200 and
    delivers nothing; the token log shows each failure, but a developer needs
    one line that says which backend, which host and what went wrong.
    """
    describe = getattr(backend, "describe", None)
    if callable(describe):
        where = str(describe())
    elif backend is not None:  # a backend that does not derive from BaseBackend
        where = f"{type(backend).__module__}.{type(backend).__qualname__}"
    elif channel == Channel.SMS:  # the backend could not even be built
        where = f"an SMS backend that could not be built ({type(exc).__name__})"
    else:
        where = str(otp_settings.EMAIL_BACKEND)
    if where in _REPORTED:
        return where
    _REPORTED.add(where)
    logger.error(
        "OTP delivery through %s failed: %s: %s (logged once per process; later failures "
        "are on each token and at WARNING)",
        where,
        type(exc).__name__,
        getattr(exc, "reason", None) or exc,
    )
    return where


def _retry_or_fail(
    token: OTPToken,
    reason: str,
    attempt: int,
    *,
    code: str = "",
    at_least: float | None = None,
    backend: str = "",
    resume: str = "",
    claimed_at: dt.datetime | None = None,
    hand_over: HandOver | None = None,
) -> RetryLater | None:
    """Retry with backoff, not before ``at_least`` seconds (the provider's own window).

    ``backend``: the last one tried; ``resume``: where the retry starts ("": the route's first).
    ``hand_over``: for an outbox token, publishes the retry's own task once the token is
    requeued *with* its envelope, and only then takes the envelope off the row: a run that
    dies in between leaves the token in the outbox (for the next run), and a retry that
    cannot be published leaves it there too.
    """
    countdown = max(backoff(attempt), at_least or 0.0)
    left = (token.code_expires_at - timezone.now()).total_seconds()
    if attempt >= otp_settings.DELIVERY_MAX_RETRIES or countdown >= left - 1:
        mark_failed(token, f"gave up after {attempt + 1} attempts: {reason}", backend=backend)
        return None
    OTPToken.objects.requeue_for_retry(
        token,
        reason=reason,
        code=code,
        backend=resume,
        claimed_at=claimed_at,
        keep_envelope=hand_over is not None,
    )
    if hand_over is not None and hand_over(countdown):
        OTPToken.objects.leave_outbox(token.pk)
    metrics.delivery(backend, token.channel, "retry")
    logger.warning("OTP delivery for token %s will be retried: %s", token.pk, reason)
    return RetryLater(countdown)


def mark_failed(token: OTPToken, reason: str, *, backend: str = "") -> None:
    """Failed for good: the token closes, its quota comes back, receivers hear why.

    Not if another run sent the message meanwhile: its code stays verifiable.
    """
    if not OTPToken.objects.mark_failed(token.pk, reason, backend=backend):
        logger.info("OTP delivery for token %s failed here but was sent elsewhere", token.pk)
        return
    metrics.delivery(backend, token.channel, "failed")
    Quota.objects.give_back(token)
    logger.error("OTP delivery failed for good: token %s: %s", token.pk, reason)
    signals.otp_delivery_failed.send(sender=OTPToken, token=token, reason=reason)


def expire_stale_deliveries() -> int:
    """Close deliveries whose code expired before any worker sent it; return how many.

    Celery discards a task that reaches a worker after its ``expires`` without
    running it, and a broker that lost its data loses the task; either way the
    token would keep its quota forever. This finds them (queued, or claimed by
    a worker that never finished, past the code's validity and the claim
    lease), marks them expired and gives their quota back. The purge task runs
    it before deleting old tokens.
    """
    stale = OTPToken.objects.stale_deliveries(now=timezone.now(), lease=claim_lease())
    count = 0
    for token in stale.iterator():
        if OTPToken.objects.expire_unsent(
            token.pk, "not sent: expired in queue", was=token.delivery_status
        ):
            Quota.objects.give_back(token)
            metrics.delivery("", token.channel, "expired")
            count += 1
    if count:
        logger.warning("%d OTP deliveries expired before a worker sent them", count)
    return count
