"""The admin's one reading of a quota's period: what counts as used now, and a new period.

Every admin page that shows or resets a quota's usage goes through these few
functions, so the period rule can change in one place: today they read the
model's ``Quota.current_used`` / ``Quota.remaining`` properties (the period
rolled over when ``period_start`` is before the current period's start);
once ``Quota.objects.with_current_used()`` exists, ``for_display`` annotates
the queryset and ``used_this_period`` reads the annotation.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, QuerySet, Value, When
from django.utils import timezone

from ..models import Quota, QuotaPeriod, period_start_for


def for_display(quotas: QuerySet[Quota]) -> QuerySet[Quota]:
    """The quotas as the admin lists them (the place to annotate this period's usage)."""
    return quotas


def used_this_period(quota: Quota) -> int:
    """Messages counted in the current period (0 once the period rolled over)."""
    return quota.current_used


def remaining_this_period(quota: Quota) -> int:
    return quota.remaining


def first_period_start(period: str) -> dt.datetime:
    """The ``period_start`` of a quota created now."""
    return period_start_for(period)


def start_new_period(quotas: QuerySet[Quota]) -> None:
    """Usage back to zero and a period that starts now, in one ``UPDATE`` for every quota."""
    now = timezone.now()
    quotas.update(
        used=0,
        period_start=Case(
            *(
                When(period=period, then=Value(period_start_for(period, now)))
                for period in QuotaPeriod.values
            ),
            default=Value(period_start_for(QuotaPeriod.NONE, now)),
        ),
    )
