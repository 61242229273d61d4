"""The quota period rule: one rule, every form of it (Python, ORM, raw SQL) agreeing."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from django_ciam_otp.managers import EPOCH, current_period_start, rolled_over
from django_ciam_otp.models import (
    Quota,
    QuotaPeriod,
    period_start_for,
)

pytestmark = pytest.mark.django_db

# 16:00 UTC is midnight in the test settings' Asia/Shanghai.
START = dt.datetime(2025, 5, 31, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=25)


# --- the period rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "start"),
    [
        (QuotaPeriod.NONE, EPOCH),
        (QuotaPeriod.DAILY, dt.datetime(2025, 5, 30, 16, 0, tzinfo=dt.UTC)),
        (QuotaPeriod.MONTHLY, dt.datetime(2025, 4, 30, 16, 0, tzinfo=dt.UTC)),
    ],
)
def test_every_form_of_the_period_rule_agrees(client, period, start):
    """Python, the model and SQL say the same about the same row, either side of the start."""
    assert period_start_for(period, START) == start
    for period_start, over in ((start - dt.timedelta(seconds=1), True), (start, False)):
        if period == QuotaPeriod.NONE and over:
            period_start = EPOCH - dt.timedelta(days=1)
        Quota.objects.all().delete()
        quota = Quota.objects.create(
            client=client, channel="sms", limit=9, used=4, period=period, period_start=period_start
        )
        assert quota.has_rolled_over(START) is over
        assert Quota.objects.filter(rolled_over(START)).exists() is over
        annotated = Quota.objects.with_current_used(START).annotate(
            start=current_period_start(START)
        )
        assert annotated.values_list("used_now", "start").get() == (0 if over else 4, start)
        with time_machine.travel(START, tick=False):
            assert quota.current_used == (0 if over else 4)
