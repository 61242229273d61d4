"""The states a token and a quota can be in, and the quota period rule, once.

The choices are the values of ``OTPToken.status``, ``OTPToken.delivery_status``
and ``Quota.period``; ``models.py`` re-exports them. The period rule is
:func:`period_start_for`; every other form of it (the SQL expressions here,
``Quota.has_rolled_over``, the hand-written consume statement) derives from it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models
from django.db.models import Case, DateTimeField, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TokenStatus(models.TextChoices):
    """Whether a token's code can still be verified (see ``DeliveryStatus`` for its message)."""

    PENDING = "pending", _("Pending")
    VERIFIED = "verified", _("Verified")
    SUPERSEDED = "superseded", _("Superseded by a newer code")
    LOCKED = "locked", _("Locked (too many attempts)")
    #: Closed because its message failed for good: no code to verify ever reached anyone.
    FAILED = "failed", _("Delivery failed")


class DeliveryStatus(models.TextChoices):
    """What happened to a token's message."""

    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Not sent (no account)")
    EXPIRED = "expired", _("Not sent (expired in queue)")
    TEST = "test", _("Not sent (test recipient)")
    #: A delivery receipt said the handset got it.
    DELIVERED = "delivered", _("Delivered")
    #: A delivery receipt said the carrier gave up: answered as a failed delivery.
    UNDELIVERED = "undelivered", _("Undelivered")


#: Deliveries whose message a provider took: a code that went out stays verifiable.
SENT_DELIVERIES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED)

#: Deliveries that reached an outcome: no worker moves them any more (a receipt may still
#: move ``sent`` to ``delivered`` or ``undelivered``).
FINISHED_DELIVERIES = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.EXPIRED,
)


class QuotaPeriod(models.TextChoices):
    NONE = "none", _("No reset")
    DAILY = "daily", _("Daily")
    MONTHLY = "monthly", _("Monthly")


# --- the quota period rule, once ----------------------------------------------------------

#: The start of a quota that never resets (and the model's default ``period_start``).
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def period_start_for(period: str, now: dt.datetime | None = None) -> dt.datetime:
    """Start of the quota period containing ``now``, in the site's time zone.

    Every other form of the rule (SQL, the model's ``current_used``) derives
    from this one, so a day or a month starts at the same instant for each.
    """
    if period == QuotaPeriod.NONE:
        return EPOCH
    local = timezone.localtime(now or timezone.now())
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == QuotaPeriod.MONTHLY:
        start = start.replace(day=1)
    return start


def current_period_start(now: dt.datetime | None = None) -> Case:
    """The start of each quota row's current period, as a SQL expression."""
    now = now or timezone.now()
    return Case(
        When(period=QuotaPeriod.DAILY, then=Value(period_start_for(QuotaPeriod.DAILY, now))),
        When(period=QuotaPeriod.MONTHLY, then=Value(period_start_for(QuotaPeriod.MONTHLY, now))),
        default=Value(period_start_for(QuotaPeriod.NONE, now)),
        output_field=DateTimeField(),
    )


def rolled_over(now: dt.datetime | None = None) -> Q:
    """Quota rows whose period has rolled over: their ``used`` no longer counts."""
    return Q(period_start__lt=current_period_start(now))


def period_case_params(now: dt.datetime, adapt: Any) -> list[Any]:
    """The parameters of ``sql.period_case``: the same mapping as :func:`current_period_start`."""
    return [
        QuotaPeriod.DAILY,
        adapt(period_start_for(QuotaPeriod.DAILY, now)),
        QuotaPeriod.MONTHLY,
        adapt(period_start_for(QuotaPeriod.MONTHLY, now)),
        adapt(period_start_for(QuotaPeriod.NONE, now)),
    ]
