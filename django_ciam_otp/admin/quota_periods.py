"""The admin's one reading of a quota's period: what counts as used now, and a new period.

Every admin page that shows or resets a quota's usage goes through these few
functions, which use the period rule of ``managers/states.py`` through the
quota QuerySet (``with_current_used``, ``start_new_period``): the admin never
writes the rule itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..managers.quotas import QuotaQuerySet
from ..models import Quota, period_start_for


def for_display(quotas: Any) -> QuotaQuerySet:
    """The quotas as the admin lists them, with this period's usage (``used_now``)."""
    queryset: QuotaQuerySet = quotas
    return queryset.with_current_used()


def used_this_period(quota: Quota) -> int:
    """Messages counted in the current period (0 once the period rolled over)."""
    used_now = getattr(quota, "used_now", None)  # annotated by for_display
    return quota.current_used if used_now is None else int(used_now)


def remaining_this_period(quota: Quota) -> int:
    return max(0, quota.limit - used_this_period(quota))


def first_period_start(period: str) -> dt.datetime:
    """The ``period_start`` of a quota created now."""
    return period_start_for(period)


def start_new_period(quotas: Any) -> None:
    """Usage back to zero and a period that starts now, in one ``UPDATE`` for every quota."""
    queryset: QuotaQuerySet = quotas
    queryset.start_new_period()
