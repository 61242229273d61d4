"""The numbers on the admin dashboard: today's sends and verifications, delivery failures, quotas.

Every figure comes from a fixed, small number of aggregate queries (one over
today's tokens, one over the quotas), never from a loop over rows, so the page
costs the same with ten tokens or ten million.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from . import breaker, sitewide
from .managers import SENT_DELIVERIES
from .models import (
    Channel,
    DeliveryStatus,
    OTPToken,
    Quota,
    QuotaPeriod,
    TokenStatus,
)

#: How many quotas the dashboard lists (the lowest remaining first).
QUOTA_ROWS = 20


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


@dataclass(frozen=True)
class ChannelStats:
    """Today's traffic on one channel."""

    channel: str
    label: str
    sends: int = 0
    delivered: int = 0
    failed: int = 0
    suppressed: int = 0
    verified: int = 0
    #: Units the providers billed (SMS segments), where they say; 0 when none did.
    billed: int = 0

    @property
    def finished(self) -> int:
        """Deliveries that reached an outcome (sent or failed for good)."""
        return self.delivered + self.failed

    @property
    def failure_rate(self) -> float | None:
        """Failed deliveries as a percentage of finished ones; ``None`` when none finished yet."""
        return _percent(self.failed, self.finished)

    @property
    def verification_rate(self) -> float | None:
        return _percent(self.verified, self.sends)


@dataclass(frozen=True)
class BackendStats:
    """Today's deliveries through one backend (``SMS_BACKENDS`` name), and what receipts said."""

    name: str
    channel: str
    #: Messages the backend's provider took (sent, and later delivered or undelivered).
    taken: int = 0
    #: Receipts: the handset got it / the carrier gave up.
    delivered: int = 0
    undelivered: int = 0
    #: Deliveries that failed for good with this backend the last one tried.
    failed: int = 0

    @property
    def delivered_rate(self) -> float | None:
        """Delivered among the messages taken (``None``: nothing taken)."""
        return _percent(self.delivered, self.taken)

    @property
    def undelivered_rate(self) -> float | None:
        return _percent(self.undelivered, self.taken)


@dataclass(frozen=True)
class QuotaRow:
    """One quota as it stands now (a rolled-over period counts as unused)."""

    pk: int
    client_pk: int | None
    client_name: str
    channel_label: str
    period_label: str
    limit: int
    used: int
    remaining: int

    @property
    def site_wide(self) -> bool:
        return self.client_pk is None

    @property
    def used_percent(self) -> float:
        if self.limit <= 0:
            return 100.0
        return min(100.0, round(100.0 * self.used / self.limit, 1))


@dataclass(frozen=True)
class Dashboard:
    day_start: dt.datetime
    channels: list[ChannelStats] = field(default_factory=list)
    quotas: list[QuotaRow] | None = None
    quota_count: int = 0
    #: Backends that stopped (misconfigured), with why and until when.
    stops: list[breaker.Stop] = field(default_factory=list)
    #: Today's deliveries per backend, with the receipts' delivered/undelivered rates.
    backends: list[BackendStats] = field(default_factory=list)
    #: The site-wide pumping view: its mode, budget and recent unproven-prefix sends.
    pumping: sitewide.Status | None = None

    @property
    def total(self) -> ChannelStats:
        """All channels together."""
        return ChannelStats(
            channel="",
            label="",
            sends=sum(c.sends for c in self.channels),
            delivered=sum(c.delivered for c in self.channels),
            failed=sum(c.failed for c in self.channels),
            suppressed=sum(c.suppressed for c in self.channels),
            verified=sum(c.verified for c in self.channels),
            billed=sum(c.billed for c in self.channels),
        )


def channel_stats(day_start: dt.datetime) -> list[ChannelStats]:
    """Per-channel counts of the tokens created since ``day_start``: one grouped query.

    A "send" is a token meant to be delivered (a ``reset_password`` for an
    unknown recipient is answered but suppressed, and counted apart).
    Verifications are counted on the tokens created today, which keeps the
    query on the ``created_at`` index; a token lives minutes, so the two
    differ only around midnight.
    """
    suppressed = Q(delivery_status=DeliveryStatus.SUPPRESSED)
    rows = (
        OTPToken.objects.filter(created_at__gte=day_start)
        .order_by()
        .values("channel")
        .annotate(
            sends=Count("pk", filter=~suppressed),
            delivered=Count("pk", filter=Q(delivery_status__in=SENT_DELIVERIES)),
            failed=Count("pk", filter=Q(delivery_status=DeliveryStatus.FAILED)),
            suppressed=Count("pk", filter=suppressed),
            verified=Count("pk", filter=Q(status=TokenStatus.VERIFIED)),
            billed=Sum("fee", default=0),
        )
    )
    by_channel = {row["channel"]: row for row in rows}
    stats = []
    for value, label in Channel.choices:
        row = by_channel.get(value)
        if row is None:
            stats.append(ChannelStats(channel=value, label=str(label)))
            continue
        stats.append(
            ChannelStats(
                channel=value,
                label=str(label),
                sends=row["sends"],
                delivered=row["delivered"],
                failed=row["failed"],
                suppressed=row["suppressed"],
                verified=row["verified"],
                billed=row["billed"] or 0,
            )
        )
    return stats


def backend_stats(day_start: dt.datetime) -> list[BackendStats]:
    """Per-backend counts of the deliveries of tokens created since ``day_start``: one query."""
    rows = (
        OTPToken.objects.filter(created_at__gte=day_start)
        .exclude(delivery_backend="")
        .order_by()
        .values("delivery_backend", "channel")
        .annotate(
            taken=Count("pk", filter=Q(delivery_status__in=SENT_DELIVERIES)),
            delivered=Count("pk", filter=Q(delivery_status=DeliveryStatus.DELIVERED)),
            undelivered=Count("pk", filter=Q(delivery_status=DeliveryStatus.UNDELIVERED)),
            failed=Count("pk", filter=Q(delivery_status=DeliveryStatus.FAILED)),
        )
        .order_by("channel", "delivery_backend")
    )
    return [
        BackendStats(
            name=row["delivery_backend"],
            channel=row["channel"],
            taken=row["taken"],
            delivered=row["delivered"],
            undelivered=row["undelivered"],
            failed=row["failed"],
        )
        for row in rows
    ]


def quota_rows(now: dt.datetime, limit: int = QUOTA_ROWS) -> list[QuotaRow]:
    """The ``limit`` quotas with the fewest messages left: one query, sorted and cut in SQL."""
    period_labels = dict(QuotaPeriod.choices)
    channel_labels = dict(Channel.choices)
    rows = (
        Quota.objects.with_current_used(now)
        .annotate(left=Greatest(F("limit") - F("used_now"), Value(0)))
        .order_by("left", "client__name", "channel")
        .values(
            "pk", "client_id", "client__name", "channel", "period", "limit", "used_now", "left"
        )[:limit]
    )
    return [
        QuotaRow(
            pk=row["pk"],
            client_pk=row["client_id"],
            client_name=row["client__name"] or "",
            channel_label=str(channel_labels.get(row["channel"], row["channel"])),
            period_label=str(period_labels.get(row["period"], row["period"])),
            limit=row["limit"],
            used=row["used_now"],
            remaining=row["left"],
        )
        for row in rows
    ]


def build_dashboard(
    *, now: dt.datetime | None = None, traffic: bool = True, quotas: bool = True
) -> Dashboard:
    """Everything the dashboard shows; ``traffic``/``quotas`` omit what the viewer may not see."""
    now = now or timezone.now()
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return Dashboard(
        day_start=day_start,
        channels=channel_stats(day_start) if traffic else [],
        quotas=quota_rows(now) if quotas else None,
        quota_count=Quota.objects.count() if quotas else 0,
        stops=breaker.active(),
        backends=backend_stats(day_start) if traffic else [],
        pumping=sitewide.status() if traffic else None,
    )
