"""metrics.collectors: quota and blocked-prefix gauges, read at scrape time and only then."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry

from django_ciam_otp.metrics.collectors import DatabaseCollector
from django_ciam_otp.models import BlockedPrefix, Quota, QuotaPeriod


def gauges(collector: DatabaseCollector) -> dict[str, dict[tuple[str, ...], float]]:
    """``{metric: {label values: value}}`` of one collect()."""
    found: dict[str, dict[tuple[str, ...], float]] = {}
    for family in collector.collect():
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sample.labels.values())] = sample.value
    return found


def test_registering_and_describing_run_no_query():
    """Without database access (no django_db mark) any query would fail this test."""
    registry = CollectorRegistry(auto_describe=True)  # as prometheus_client.REGISTRY
    registry.register(DatabaseCollector())
    names = {family.name for family in DatabaseCollector().describe()}
    assert names == {
        "ciam_otp_quota_remaining",
        "ciam_otp_quota_limit",
        "ciam_otp_blocked_prefixes",
    }


@pytest.mark.django_db
def test_remaining_is_what_the_current_period_still_allows(
    client_factory, django_assert_num_queries
):
    today = timezone.now()
    busy = client_factory(client_id="busy", sms_quota=10, email_quota=0).client
    client_factory(client_id="free")  # no quota: no limit, so no series
    Quota.objects.filter(client=busy, channel="sms").update(used=3)
    Quota.objects.create(client=None, channel="email", limit=100, used=100)
    # a daily quota used up yesterday: today's period starts at zero
    daily = client_factory(client_id="daily", sms_quota=5, quota_period=QuotaPeriod.DAILY).client
    Quota.objects.filter(client=daily).update(used=5, period_start=today - dt.timedelta(days=1))
    # an admin lowered the limit below what was used: nothing remains, never less
    lowered = client_factory(client_id="lowered", sms_quota=2).client
    Quota.objects.filter(client=lowered).update(used=7)

    with django_assert_num_queries(2):
        found = gauges(DatabaseCollector())

    assert found["ciam_otp_quota_remaining"] == {
        ("busy", "sms"): 7,
        ("busy", "email"): 0,
        ("*", "email"): 0,
        ("daily", "sms"): 5,
        ("lowered", "sms"): 0,
    }
    assert found["ciam_otp_quota_limit"] == {
        ("busy", "sms"): 10,
        ("busy", "email"): 0,
        ("*", "email"): 100,
        ("daily", "sms"): 5,
        ("lowered", "sms"): 2,
    }


@pytest.mark.django_db
def test_blocked_prefixes_count_only_running_blocks():
    now = timezone.now()
    for prefix, until in (("861361234", 1), ("861391234", 60), ("861501234", -1)):
        BlockedPrefix.objects.create(prefix=prefix, blocked_until=now + dt.timedelta(minutes=until))
    assert gauges(DatabaseCollector())["ciam_otp_blocked_prefixes"] == {(): 2}
    with time_machine.travel(now + dt.timedelta(minutes=2)):
        assert gauges(DatabaseCollector())["ciam_otp_blocked_prefixes"] == {(): 1}


@pytest.mark.django_db
def test_nothing_is_read_with_metrics_off(settings, django_assert_num_queries):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "METRICS": False}
    with django_assert_num_queries(0):
        assert gauges(DatabaseCollector()) == {}


@pytest.mark.django_db
def test_a_database_error_costs_the_gauges_not_the_scrape(monkeypatch, caplog):
    def down(*args: object, **kwargs: object) -> None:
        raise DatabaseError("server closed the connection")

    monkeypatch.setattr(BlockedPrefix.objects, "filter", down)
    with caplog.at_level(logging.WARNING, logger="django_ciam_otp.metrics.collectors"):
        assert gauges(DatabaseCollector()) == {}
    assert "not read" in caplog.text


@pytest.mark.django_db
def test_the_default_registry_holds_the_collector_once():
    """Registered when the metrics were created (once per process), whatever decided since."""
    from django_ciam_otp import metrics

    metrics.decide()
    metrics.decide()
    families = list(REGISTRY.restricted_registry(["ciam_otp_blocked_prefixes"]).collect())
    assert [family.name for family in families] == ["ciam_otp_blocked_prefixes"]
