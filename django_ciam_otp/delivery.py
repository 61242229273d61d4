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
recording the outcome. Only a claim that fails (already sent, claimed by a
live worker, expired, not pending) reads the row to find out why. Databases
without ``UPDATE … RETURNING`` (MySQL, SQLite < 3.35) read the row first.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import weakref
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.models import F, Q
from django.utils import timezone

from . import breaker, crypto, signals
from .backends.base import (
    Accepted,
    BackendMisconfigured,
    BaseBackend,
    OTPMessage,
    PermanentDeliveryError,
)
from .conf import otp_settings
from .flows.quotas import give_back_quota
from .models import Channel, DeliveryStatus, OTPToken, TokenStatus
from .sql import update_returning_supported as _update_returning_supported

logger = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
BACKOFF_CAP = 20.0
_FINISHED = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.EXPIRED,
)


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


def get_backend(channel: str) -> BaseBackend:
    name = "SMS_BACKEND" if channel == Channel.SMS else "EMAIL_BACKEND"
    backend_class = otp_settings.import_string(name)
    backend: BaseBackend = backend_class()
    return backend


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff (AWS architecture blog), in seconds."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))  # noqa: S311


# What the message, the outcome and a give-back need; the rest of the row stays
# in the database (a signal receiver that reads another field loads it).
_CLAIM_FIELDS = frozenset(
    {
        "id",
        "token_hash",
        "client",
        "channel",
        "usage",
        "recipient_masked",
        "code_expires_at",
        "created_at",
        "language",
        "quota_consumed",
        "delivery_attempts",
        "delivery_error_code",
    }
)


@dataclass(frozen=True)
class _Statements:
    """The two statements of a delivery, written once per database (names from the model)."""

    claim: str
    sent: str
    attnames: tuple[str, ...]  # the fields the claim returns, in its order
    cols: tuple[Any, ...]  # ... as column expressions, for the database's value converters


@functools.lru_cache(maxsize=8)
def _statements(alias: str, vendor: str) -> _Statements:
    conn = connections[alias]
    qn = conn.ops.quote_name
    meta = OTPToken._meta
    col = {f.name: qn(f.column or f.name) for f in meta.concrete_fields}
    fields = tuple(f for f in meta.concrete_fields if f.name in _CLAIM_FIELDS)
    table = qn(meta.db_table)
    # Names come from the model; every value is a parameter.
    claim = (
        f"UPDATE {table} "  # noqa: S608
        f"SET {col['delivery_status']} = %s, {col['delivery_started_at']} = %s "
        f"WHERE {col['id']} = %s AND {col['status']} = %s AND {col['code_expires_at']} > %s "
        f"AND ({col['delivery_status']} = %s "
        f"OR ({col['delivery_status']} = %s AND {col['delivery_started_at']} < %s)) "
        f"RETURNING {', '.join(col[f.name] for f in fields)}"
    )
    sent = (
        f"UPDATE {table} "  # noqa: S608
        f"SET {col['delivery_status']} = %s, {col['provider_message_id']} = %s, "
        f"{col['fee']} = %s, {col['billed_region']} = %s, "
        f"{col['delivery_attempts']} = {col['delivery_attempts']} + 1, "
        f"{col['delivery_error']} = '', {col['delivery_error_code']} = '', {col['sent_at']} = %s "
        f"WHERE {col['id']} = %s"
    )
    cols = tuple(f.get_col(meta.db_table) for f in fields)
    return _Statements(claim, sent, tuple(f.attname for f in fields), cols)


def _claim(token_id: int, now: dt.datetime, lease: dt.timedelta) -> OTPToken | None:
    """Claim a deliverable token in one statement; ``None`` if it is not claimable here.

    One ``UPDATE … RETURNING`` does what a ``SELECT`` and the conditional
    ``UPDATE`` did: it claims the token only if it is still pending, its code
    still valid, and its delivery queued or held by a claim older than the
    lease, and returns the columns of :data:`_CLAIM_FIELDS` as a (partly
    loaded) ``OTPToken``. ``None`` on a database without ``UPDATE …
    RETURNING`` too: the caller then takes the path that reads first.
    """
    using = router.db_for_write(OTPToken)
    conn = connections[using]
    if not _update_returning_supported(conn):
        return None
    sql = _statements(using, conn.vendor)
    adapt = conn.ops.adapt_datetimefield_value
    params = (
        DeliveryStatus.SENDING,
        adapt(now),
        token_id,
        TokenStatus.PENDING,
        adapt(now),
        DeliveryStatus.QUEUED,
        DeliveryStatus.SENDING,
        adapt(now - lease),
    )
    with conn.cursor() as cursor:
        cursor.execute(sql.claim, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for i, col, converters in _converters(conn, sql):  # as the ORM reads them
        for convert in converters:
            values[i] = convert(values[i], col, conn)
    return OTPToken.from_db(using, sql.attnames, values)


# The value converters of each connection (SQLite: datetimes, booleans; PostgreSQL: none).
_CONVERTERS: weakref.WeakKeyDictionary[Any, list[tuple[int, Any, list[Any]]]] = (
    weakref.WeakKeyDictionary()
)


def _converters(conn: Any, sql: _Statements) -> list[tuple[int, Any, list[Any]]]:
    try:
        return _CONVERTERS[conn]
    except KeyError:
        found = [
            (i, col, conn.ops.get_db_converters(col) + col.get_db_converters(conn))
            for i, col in enumerate(sql.cols)
        ]
        _CONVERTERS[conn] = converters = [entry for entry in found if entry[2]]
        return converters


def _record_sent(token: OTPToken, accepted: Accepted) -> None:
    using = router.db_for_write(OTPToken)
    conn = connections[using]
    fee = accepted.fee if accepted.fee is not None and 0 <= accepted.fee < 32768 else None
    region = (accepted.region or "")[:8]
    if not _update_returning_supported(conn):  # the same statement through the ORM
        OTPToken.objects.filter(pk=token.pk).update(
            delivery_status=DeliveryStatus.SENT,
            provider_message_id=accepted.message_id[:128],
            fee=fee,
            billed_region=region,
            delivery_attempts=F("delivery_attempts") + 1,
            delivery_error="",
            delivery_error_code="",
            sent_at=timezone.now(),
        )
        return
    params = (
        DeliveryStatus.SENT,
        accepted.message_id[:128],
        fee,
        region,
        conn.ops.adapt_datetimefield_value(timezone.now()),
        token.pk,
    )
    with conn.cursor() as cursor:
        cursor.execute(_statements(using, conn.vendor).sent, params)


def deliver(token_id: int, envelope: str, *, attempt: int = 0) -> RetryLater | None:
    """Send the code for ``token_id``; return :class:`RetryLater` to be called again."""
    now = timezone.now()
    lease = claim_lease()
    try:
        payload: dict[str, Any] | None = crypto.unseal(envelope)
    except ValueError:
        payload = None
    token = _claim(token_id, now, lease) if payload is not None else None
    if token is not None and payload is not None:
        if payload.get("h") != token.token_hash[:16]:
            _mark_failed(token, "envelope could not be opened (hash key changed?)")
            return None
        return _send(token, payload, attempt)
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
                _mark_failed(
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
    if token.delivery_status in _FINISHED:
        return None
    if token.status != TokenStatus.PENDING or now >= token.code_expires_at:
        _finish_unsent(token, DeliveryStatus.EXPIRED, "not sent: code no longer usable")
        return None
    if payload is None or payload.get("h") != token.token_hash[:16]:
        _mark_failed(token, "envelope could not be opened (hash key changed?)")
        return None

    claimed = OTPToken.objects.filter(
        Q(delivery_status=DeliveryStatus.QUEUED)
        | Q(delivery_status=DeliveryStatus.SENDING, delivery_started_at__lt=now - lease),
        pk=token.pk,
    ).update(delivery_status=DeliveryStatus.SENDING, delivery_started_at=now)
    if not claimed:
        return _claimed_elsewhere(token.pk, now, lease)
    return _send(token, payload, attempt)


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


def _send(token: OTPToken, payload: dict[str, Any], attempt: int) -> RetryLater | None:
    """Call the provider for a token this run has claimed; record the outcome."""
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
    stopped = breaker.current(token.channel)
    if stopped is not None:  # the provider cannot send anything: do not even ask it
        _mark_failed(token, f"not sent: {stopped.backend} stopped ({stopped.code})")
        return None
    backend: BaseBackend | None = None
    try:
        backend = get_backend(token.channel)
        sent = backend.send(message)
    except (BackendMisconfigured, ImproperlyConfigured) as exc:
        where = _report_first_failure(backend, token.channel, exc)
        code = getattr(exc, "provider_code", None) or type(exc).__name__
        reason = getattr(exc, "reason", None) or str(exc)
        breaker.trip(token.channel, where, code, reason)
        _mark_failed(token, reason)
        return None
    except PermanentDeliveryError as exc:
        _report_first_failure(backend, token.channel, exc)
        _mark_failed(token, exc.reason)
        return None
    except Exception as exc:  # noqa: BLE001 - every other failure is worth a retry
        _report_first_failure(backend, token.channel, exc)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        code = getattr(exc, "provider_code", None) or type(exc).__name__
        wait = getattr(exc, "retry_after", None)
        return _retry_or_fail(token, reason, attempt, code=code, at_least=wait)

    accepted = sent if isinstance(sent, Accepted) else Accepted(sent or "")
    _record_sent(token, accepted)
    logger.info("OTP delivered: token %s to %s", token.pk, token.recipient_masked)
    return None


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
    else:  # the backend could not even be built
        where = str(
            getattr(otp_settings, "SMS_BACKEND" if channel == Channel.SMS else "EMAIL_BACKEND")
        )
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
) -> RetryLater | None:
    """Retry with backoff, not before ``at_least`` seconds (the provider's own window)."""
    countdown = max(backoff(attempt), at_least or 0.0)
    left = (token.code_expires_at - timezone.now()).total_seconds()
    if attempt >= otp_settings.DELIVERY_MAX_RETRIES or countdown >= left - 1:
        _mark_failed(token, f"gave up after {attempt + 1} attempts: {reason}")
        return None
    OTPToken.objects.filter(pk=token.pk, delivery_status=DeliveryStatus.SENDING).update(
        delivery_status=DeliveryStatus.QUEUED,
        delivery_attempts=token.delivery_attempts + 1,
        delivery_error=reason[:200],
        delivery_error_code=code[:64],
    )
    logger.warning("OTP delivery for token %s will be retried: %s", token.pk, reason)
    return RetryLater(countdown)


def _mark_failed(token: OTPToken, reason: str) -> None:
    OTPToken.objects.filter(pk=token.pk).exclude(delivery_status=DeliveryStatus.SENT).update(
        delivery_status=DeliveryStatus.FAILED,
        delivery_error=reason[:200],
    )
    OTPToken.objects.filter(pk=token.pk, status=TokenStatus.PENDING).update(
        status=TokenStatus.FAILED
    )
    give_back_quota(token)
    logger.error("OTP delivery failed for good: token %s: %s", token.pk, reason)
    signals.otp_delivery_failed.send(sender=OTPToken, token=token, reason=reason)


def _finish_unsent(token: OTPToken, status: str, reason: str) -> None:
    OTPToken.objects.filter(pk=token.pk).exclude(delivery_status__in=_FINISHED).update(
        delivery_status=status, delivery_error=reason
    )
    give_back_quota(token)


def expire_stale_deliveries() -> int:
    """Close deliveries whose code expired before any worker sent it; return how many.

    Celery discards a task that reaches a worker after its ``expires`` without
    running it, and a broker that lost its data loses the task; either way the
    token would keep its quota forever. This finds them (queued, or claimed by
    a worker that never finished, past the code's validity and the claim
    lease), marks them expired and gives their quota back. The purge task runs
    it before deleting old tokens.
    """
    now = timezone.now()
    stale = OTPToken.objects.filter(
        Q(delivery_status=DeliveryStatus.QUEUED)
        | Q(delivery_status=DeliveryStatus.SENDING, delivery_started_at__lt=now - claim_lease()),
        code_expires_at__lt=now,
    ).only("pk", "client_id", "channel", "quota_consumed", "created_at", "delivery_status")
    count = 0
    for token in stale.iterator():
        closed = OTPToken.objects.filter(pk=token.pk, delivery_status=token.delivery_status).update(
            delivery_status=DeliveryStatus.EXPIRED, delivery_error="not sent: expired in queue"
        )
        if closed:
            give_back_quota(token)
            count += 1
    if count:
        logger.warning("%d OTP deliveries expired before a worker sent them", count)
    return count
