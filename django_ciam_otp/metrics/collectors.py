"""Gauges read from the database when Prometheus scrapes, not kept up to date by each send.

A quota's remaining messages and the number of blocked prefixes are rows
every process shares: counting them as they change would need a gauge per
process to be merged (and would be wrong after an admin's top-up in another
process). Reading them at scrape time is two small queries per scrape,
whoever serves ``/metrics``:

* the quotas, with their client's ``client_id`` (one ``LEFT JOIN``; one row
  per quota, so per client and channel at most);
* ``COUNT(*)`` of the blocked prefixes whose block is running (the
  ``blocked_until`` index).

Nothing runs at import or on registration (:meth:`DatabaseCollector.describe`
names the metrics without a query), only on ``collect()``, i.e. a scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from ..conf import otp_settings
from ..models import BlockedPrefix, Quota
from .labels import SITE_WIDE

logger = logging.getLogger(__name__)


def quota_remaining_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ciam_otp_quota_remaining",
        "Messages a quota still allows in its current period (limit minus used, at least 0); "
        f'client="{SITE_WIDE}" is a site-wide quota. No series: no quota, so no limit.',
        labels=["client", "channel"],
    )


def quota_limit_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ciam_otp_quota_limit",
        "Messages a quota allows per period (for the remaining share: remaining / limit).",
        labels=["client", "channel"],
    )


def blocked_prefixes_family(value: float | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ciam_otp_blocked_prefixes",
        "Phone-number prefixes blocked now by the conversion monitor (or an admin).",
        value=value,
    )


class DatabaseCollector:
    """The quota and blocked-prefix gauges (``ciam_otp_quota_*``, ``ciam_otp_blocked_prefixes``)."""

    def describe(self) -> list[GaugeMetricFamily]:
        """The metrics' names without their values: registration runs no query."""
        return [quota_remaining_family(), quota_limit_family(), blocked_prefixes_family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the rows; a database that cannot answer costs these gauges, not the scrape.

        Raising here would fail the whole exposition, counters included, so
        the error is logged and the gauges are left out (their series go
        stale, which ``absent()`` can alert on).
        """
        if not otp_settings.METRICS:
            return
        now = timezone.now()
        try:
            quotas = list(
                Quota.objects.with_current_used(now)
                .annotate(left=Greatest(F("limit") - F("used_now"), Value(0)))
                .values("client__client_id", "channel", "limit", "left")
            )
            blocked = BlockedPrefix.objects.filter(blocked_until__gt=now).count()
        except DatabaseError:
            logger.warning("metrics: quotas and blocked prefixes not read", exc_info=True)
            return
        remaining, limit = quota_remaining_family(), quota_limit_family()
        for quota in quotas:
            client_id = quota["client__client_id"]
            labels = [client_id if client_id is not None else SITE_WIDE, quota["channel"]]
            remaining.add_metric(labels, quota["left"])
            limit.add_metric(labels, quota["limit"])
        yield remaining
        yield limit
        yield blocked_prefixes_family(blocked)
