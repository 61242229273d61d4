"""Token transitions (delivery and verification) and the recipient throttle.

``docs/token-states.md`` draws them: which method moves a token from which
state to which.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections, models
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from .. import sql
from .states import FINISHED_DELIVERIES, SENT_DELIVERIES, DeliveryStatus, TokenStatus

if TYPE_CHECKING:
    from ..models import OTPToken, RecipientThrottle  # noqa: F401 (named in a string below)


#: What a delivery's message, outcome and give-back need, in the model's order; the rest of
#: the row stays in the database (a signal receiver that reads another field loads it).
CLAIM_FIELDS = (
    "id",
    "token_hash",
    "client",
    "channel",
    "usage",
    "recipient_masked",
    "code_expires_at",
    "delivery_attempts",
    "delivery_backend",
    "delivery_error_code",
    "quota_consumed",
    "language",
    "created_at",
)


#: What a batch delivery claims: the claim's fields, the token's status (a token closed
#: meanwhile is closed by the run) and the sealed message.
OUTBOX_FIELDS = (*CLAIM_FIELDS, "status", "delivery_envelope")


@dataclass(frozen=True)
class SentRow:
    """One accepted message of a batch, as :meth:`OTPTokenQuerySet.mark_sent_many` records it."""

    pk: int
    message_id: str
    fee: int | None
    region: str
    backend: str


def _pk(token: OTPToken) -> int:
    return int(token.pk)


def _claimable(now: dt.datetime, lease: dt.timedelta) -> Q:
    """Queued, or held by a claim older than the lease (its run is over)."""
    return Q(delivery_status=DeliveryStatus.QUEUED) | Q(
        delivery_status=DeliveryStatus.SENDING, delivery_started_at__lt=now - lease
    )


class OTPTokenQuerySet(models.QuerySet["OTPToken"]):
    # delivery: queued → sending → sent | failed | expired (and back to queued for a retry)

    def claim_for_delivery(
        self, pk: int, *, now: dt.datetime, lease: dt.timedelta
    ) -> OTPToken | None:
        """Claim a deliverable token in one ``UPDATE … RETURNING``; the token, or ``None``.

        Claims only a pending token whose code is still valid and whose
        delivery is queued or held by a claim older than ``lease``, and
        returns the :data:`CLAIM_FIELDS` of it. ``None`` when it was not
        claimable, and on a database without ``UPDATE … RETURNING``: the
        caller then reads the row and uses :meth:`claim_read`.
        """
        using = sql.write_alias(self)
        conn = connections[using]
        if not sql.update_returning_supported(conn):
            return None
        adapt = conn.ops.adapt_datetimefield_value
        params = (
            DeliveryStatus.SENDING,
            adapt(now),
            pk,
            TokenStatus.PENDING,
            adapt(now),
            DeliveryStatus.QUEUED,
            DeliveryStatus.SENDING,
            adapt(now - lease),
        )
        with conn.cursor() as cursor:
            cursor.execute(sql.delivery_claim(using, self.model, CLAIM_FIELDS), params)
            row = cursor.fetchone()
        return None if row is None else sql.returned_instance(using, self.model, CLAIM_FIELDS, row)

    def claim_due(
        self, *, limit: int, now: dt.datetime, lease: dt.timedelta, skip_locked: bool = True
    ) -> list[OTPToken]:
        """Claim up to ``limit`` deliverable tokens of the outbox in one statement, oldest first.

        The outbox: tokens whose sealed message waits on the row
        (``delivery_envelope``) for the batch task. Deliverable as for
        :meth:`claim_for_delivery`, except that a token closed meanwhile (superseded)
        is claimed too, for its run to close the delivery and give the quota back.
        Returns them with :data:`OUTBOX_FIELDS` loaded, each claimed at ``now``;
        concurrent runs on PostgreSQL take disjoint batches (``skip_locked``:
        rows another transaction holds are skipped; without it the claim waits
        for them, as a run's last look must). Empty on a database without
        ``UPDATE … RETURNING`` (it has no outbox: ``enqueue.prepare``).
        """
        using = sql.write_alias(self)
        conn = connections[using]
        if not sql.update_returning_supported(conn):
            return []
        adapt = conn.ops.adapt_datetimefield_value
        params = (
            DeliveryStatus.SENDING,
            adapt(now),
            adapt(now),
            DeliveryStatus.QUEUED,
            DeliveryStatus.SENDING,
            adapt(now - lease),
            limit,
        )
        statement = sql.delivery_claim_due(using, self.model, OUTBOX_FIELDS, skip_locked)
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
        model: type[OTPToken] = self.model
        tokens = [sql.returned_instance(using, model, OUTBOX_FIELDS, row) for row in rows]
        return sorted(tokens, key=_pk)  # RETURNING keeps no order

    def mark_sent_many(self, sent: list[SentRow], *, claimed_at: dt.datetime) -> set[int]:
        """:meth:`mark_sent` for messages of one claim: one statement on PostgreSQL.

        Returns the pks recorded; a row whose claim another run took over
        (it outlived the lease) is left as it is.
        """
        if not sent:
            return set()
        using = sql.write_alias(self)
        conn = connections[using]
        if conn.vendor != "postgresql":
            return {
                row.pk
                for row in sent
                if self.mark_sent(
                    row.pk,
                    message_id=row.message_id,
                    fee=row.fee,
                    region=row.region,
                    backend=row.backend,
                    claimed_at=claimed_at,
                )
            }
        adapt = conn.ops.adapt_datetimefield_value
        params: list[Any] = [DeliveryStatus.SENT, adapt(timezone.now())]
        for row in sent:
            fee = row.fee if row.fee is not None and 0 <= row.fee < 32768 else None
            params += [row.pk, row.message_id[:128], fee, row.region[:8], row.backend[:64]]
        params += [DeliveryStatus.SENDING, adapt(claimed_at)]
        with conn.cursor() as cursor:
            cursor.execute(sql.delivery_sent_many(using, self.model, len(sent)), params)
            return {row[0] for row in cursor.fetchall()}

    def leave_outbox(self, pk: int) -> int:
        """A queued token's retry is a task of its own now: its envelope leaves the row."""
        return self.filter(pk=pk, delivery_status=DeliveryStatus.QUEUED).update(
            delivery_envelope=""
        )

    def release_claims(self, pks: list[int], *, claimed_at: dt.datetime) -> int:
        """Give back claims this run will not use (it ran out of time): sending → queued."""
        return self.filter(
            pk__in=pks, delivery_status=DeliveryStatus.SENDING, delivery_started_at=claimed_at
        ).update(delivery_status=DeliveryStatus.QUEUED, delivery_started_at=None)

    def oldest_outbox_claim(self, *, now: dt.datetime) -> dt.datetime | None:
        """When the oldest claim on a still-valid outbox token was made, if one is held.

        A run that died holding a batch leaves its tokens claimed; the batch
        task looks for such claims as it ends and comes back when they run out.
        """
        oldest: dt.datetime | None = self.filter(
            ~Q(delivery_envelope=""),
            delivery_status=DeliveryStatus.SENDING,
            status=TokenStatus.PENDING,
            code_expires_at__gt=now,
        ).aggregate(oldest=models.Min("delivery_started_at"))["oldest"]
        return oldest

    def claim_read(self, pk: int, *, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Claim a token the caller has read and found pending and valid; whether it did."""
        return bool(
            self.filter(_claimable(now, lease), pk=pk).update(
                delivery_status=DeliveryStatus.SENDING, delivery_started_at=now
            )
        )

    def mark_sent(
        self,
        pk: int,
        *,
        message_id: str,
        fee: int | None,
        region: str,
        backend: str = "",
        claimed_at: dt.datetime | None = None,
    ) -> bool:
        """The provider accepted the message: sending → sent, one attempt more, error cleared.

        ``backend``: the name of the backend that took it (``SMS_BACKENDS``), which
        receipts are matched by. ``claimed_at``: this run's claim; a run whose claim
        another took over (it outlived the lease) records nothing (``False``).
        """
        using = sql.write_alias(self)
        conn = connections[using]
        fee = fee if fee is not None and 0 <= fee < 32768 else None
        if not sql.update_returning_supported(conn) or claimed_at is None:
            rows = self.using(using).filter(pk=pk)
            if claimed_at is not None:
                rows = rows.filter(
                    delivery_status=DeliveryStatus.SENDING, delivery_started_at=claimed_at
                )
            return bool(
                rows.update(
                    delivery_status=DeliveryStatus.SENT,
                    provider_message_id=message_id[:128],
                    fee=fee,
                    billed_region=region[:8],
                    delivery_backend=backend[:64],
                    delivery_attempts=F("delivery_attempts") + 1,
                    delivery_error="",
                    delivery_error_code="",
                    delivery_envelope="",
                    sent_at=timezone.now(),
                )
            )
        params = (
            DeliveryStatus.SENT,
            message_id[:128],
            fee,
            region[:8],
            backend[:64],
            conn.ops.adapt_datetimefield_value(timezone.now()),
            pk,
            DeliveryStatus.SENDING,
            conn.ops.adapt_datetimefield_value(claimed_at),
        )
        with conn.cursor() as cursor:
            cursor.execute(sql.delivery_sent(using, self.model), params)
            return bool(cursor.rowcount)

    def requeue_for_retry(
        self,
        token: OTPToken,
        *,
        reason: str,
        code: str,
        backend: str = "",
        claimed_at: dt.datetime | None = None,
        keep_envelope: bool = False,
    ) -> bool:
        """A transient failure: sending → queued, the attempt and its error recorded.

        ``backend``: where the retry starts (a queued token's ``delivery_backend``).
        The retry is a task of its own that carries the sealed message, so the
        token leaves the outbox (its ``delivery_envelope`` is emptied) unless
        ``keep_envelope`` (that task could not be published: the next run retries).
        """
        mine = {"delivery_started_at": claimed_at} if claimed_at is not None else {}
        return bool(
            self.filter(pk=token.pk, delivery_status=DeliveryStatus.SENDING, **mine).update(
                delivery_status=DeliveryStatus.QUEUED,
                delivery_attempts=token.delivery_attempts + 1,
                delivery_error=reason[:200],
                delivery_error_code=code[:64],
                delivery_backend=backend[:64],
                **({} if keep_envelope else {"delivery_envelope": ""}),
            )
        )

    def mark_failed(self, pk: int, reason: str, *, backend: str = "") -> bool:
        """The message failed for good: delivery → failed, and a pending token → failed.

        One statement for both fields: a token whose message another worker
        sent is left as it is (``False``), so its code still verifies.
        ``backend``: the last backend tried, when one was.
        """
        extra = {"delivery_backend": backend[:64]} if backend else {}
        return bool(
            self.filter(pk=pk)
            .exclude(delivery_status__in=SENT_DELIVERIES)
            .update(
                **extra,
                delivery_status=DeliveryStatus.FAILED,
                delivery_error=reason[:200],
                delivery_envelope="",
                status=Case(
                    When(status=TokenStatus.PENDING, then=Value(TokenStatus.FAILED)),
                    default=F("status"),
                ),
            )
        )

    def expire_unsent(self, pk: int, reason: str, *, was: str | None = None) -> bool:
        """Never sent and no longer sendable: delivery → expired.

        From any unfinished state, or, with ``was``, only from that one (a
        sweep must not close a delivery a worker claimed after it looked).
        """
        rows = self.filter(pk=pk)
        if was is None:
            rows = rows.exclude(delivery_status__in=FINISHED_DELIVERIES)
        else:
            rows = rows.filter(delivery_status=was)
        return bool(
            rows.update(
                delivery_status=DeliveryStatus.EXPIRED, delivery_error=reason, delivery_envelope=""
            )
        )

    def record_receipt(
        self, *, backend: str, message_id: str, delivered: bool, status: str, now: dt.datetime
    ) -> tuple[str, OTPToken | None]:
        """A delivery receipt: sent → delivered, or sent → undelivered (and a pending token →
        failed, as for a failed delivery). Returns the outcome and the token:

        ``"delivered"`` / ``"undelivered"``: the receipt moved the token;
        ``"repeated"``: the token already has its receipt (a provider's retry, a replay);
        nothing changes; ``"unknown"``: no message of ``backend`` has that id.
        """
        token = (
            self.filter(delivery_backend=backend, provider_message_id=message_id[:128])
            .exclude(provider_message_id="")
            .only(*CLAIM_FIELDS, "delivery_status", "sent_at", "status")
            .first()
        )
        if token is None:
            return "unknown", None
        outcome = DeliveryStatus.DELIVERED if delivered else DeliveryStatus.UNDELIVERED
        changes: dict[str, object] = {"delivery_status": outcome, "receipt_at": now}
        if not delivered:
            changes["delivery_error"] = f"undelivered: {status}"[:200]
            changes["status"] = Case(
                When(status=TokenStatus.PENDING, then=Value(TokenStatus.FAILED)),
                default=F("status"),
            )
        moved = self.filter(pk=token.pk, delivery_status=DeliveryStatus.SENT).update(**changes)
        if not moved:
            return "repeated", token
        token.delivery_status = outcome
        token.receipt_at = now
        return str(outcome), token

    def stale_deliveries(self, *, now: dt.datetime, lease: dt.timedelta) -> OTPTokenQuerySet:
        """Deliveries no worker will finish: still claimable, but their code has expired."""
        return self.filter(_claimable(now, lease), code_expires_at__lt=now).only(
            "pk", "client_id", "channel", "quota_consumed", "created_at", "delivery_status"
        )

    # verification: pending → verified | locked; superseded by a newer send

    def supersede_older(self, token: OTPToken) -> int:
        """Earlier pending tokens of (client, recipient, usage) → superseded."""
        return self.filter(
            client_id=token.client_id,
            recipient_hash=token.recipient_hash,
            usage=token.usage,
            status=TokenStatus.PENDING,
            pk__lt=token.pk,
        ).update(status=TokenStatus.SUPERSEDED)

    def with_newer_flag(self) -> OTPTokenQuerySet:
        """Annotate ``has_newer``: a later token of the same (client, recipient, usage) exists.

        Verification refuses such a token even where the supersede ``UPDATE``
        was skipped (the sent marker said it was the first send).
        """
        newer = self.model._default_manager.filter(
            client_id=OuterRef("client_id"),
            recipient_hash=OuterRef("recipient_hash"),
            usage=OuterRef("usage"),
            pk__gt=OuterRef("pk"),
        )
        return self.annotate(has_newer=Exists(newer))

    def count_wrong_attempt(self, pk: int, *, max_attempts: int) -> bool:
        """A wrong code: one attempt more, locked at ``max_attempts``; ``False`` if none was left.

        Two statements in the caller's transaction: the count is conditional
        on an attempt being left, so concurrent wrong codes cannot overrun it.
        """
        live = self.filter(pk=pk, status=TokenStatus.PENDING)
        if not live.filter(attempts__lt=max_attempts).update(attempts=F("attempts") + 1):
            return False
        live.filter(attempts__gte=max_attempts).update(status=TokenStatus.LOCKED)
        return True

    def mark_verified(self, pk: int, *, now: dt.datetime, max_attempts: int) -> bool:
        """The correct code: pending → verified, exactly once (``False`` to a race's loser)."""
        return bool(
            self.filter(pk=pk, status=TokenStatus.PENDING, attempts__lt=max_attempts).update(
                status=TokenStatus.VERIFIED, verified_at=now
            )
        )

    def withdraw(self, pk: int) -> bool:
        """Take a token whose delivery could not be queued out of delivery; ``False`` if a run
        claimed it first (it is being sent). A token that is gone (rolled back) is withdrawn."""
        if self.filter(
            pk=pk,
            delivery_status__in=[
                DeliveryStatus.QUEUED,
                DeliveryStatus.SUPPRESSED,
                DeliveryStatus.TEST,
            ],
        ).update(delivery_status=DeliveryStatus.EXPIRED, delivery_envelope=""):
            return True
        return not self.filter(pk=pk).exists()

    def discard(self, pk: int) -> None:
        """Delete a token whose delivery could not be queued (the send answers 503)."""
        self.filter(pk=pk).delete()

    def purge_expired(self, *, older_than: dt.timedelta = dt.timedelta(0)) -> int:
        """Delete tokens whose otp_token expired more than ``older_than`` ago; the count."""
        deleted, _ = self.filter(expires_at__lt=timezone.now() - older_than).delete()
        return deleted


class RecipientThrottleQuerySet(models.QuerySet["RecipientThrottle"]):
    """Consecutive wrong codes per recipient, across resends (NIST SP 800-63B 5.2.2)."""

    def is_locked(self, recipient_hash: str, now: dt.datetime) -> bool:
        return self.filter(recipient_hash=recipient_hash, locked_until__gt=now).exists()

    def count_failure(
        self, recipient_hash: str, *, now: dt.datetime, max_failures: int, lockout: dt.timedelta
    ) -> None:
        """One failure more; at ``max_failures`` the recipient is locked out and counts anew."""
        throttle, _ = self.get_or_create(recipient_hash=recipient_hash)
        self.filter(pk=throttle.pk).update(failures=F("failures") + 1)
        throttle.refresh_from_db(fields=["failures"])
        if throttle.failures >= max_failures:
            self.filter(pk=throttle.pk).update(failures=0, locked_until=now + lockout)

    def reset(self, recipient_hash: str) -> None:
        """A verified code: the recipient's failures are forgiven."""
        self.filter(recipient_hash=recipient_hash, failures__gt=0).update(
            failures=0, locked_until=None
        )
