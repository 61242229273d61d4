"""Quota transitions: consume (both SQL paths), give back once, claim an alarm once per period."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import transaction

from django_ciam_otp.exceptions import InsufficientEmailQuota, InsufficientSMSQuota
from django_ciam_otp.managers import EPOCH
from django_ciam_otp.models import (
    Quota,
    QuotaPeriod,
)

from .conftest import row

pytestmark = pytest.mark.django_db

# 16:00 UTC is midnight in the test settings' Asia/Shanghai.
START = dt.datetime(2025, 5, 31, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=25)


# --- quotas -------------------------------------------------------------------------------


def test_consume_counts_in_the_clients_and_the_site_quota(client, path):
    Quota.objects.create(client=client, channel="sms", limit=2)
    Quota.objects.create(client=None, channel="sms", limit=5)
    Quota.objects.create(client=None, channel="email", limit=5)
    taken = Quota.objects.consume(client.pk, "sms")
    assert sorted((q.client_id or 0, q.used, q.period_start) for q in taken) == [
        (0, 1, EPOCH),
        (client.pk, 1, EPOCH),
    ]
    assert sorted(Quota.objects.values_list("channel", "used")) == [
        ("email", 0),
        ("sms", 1),
        ("sms", 1),
    ]


def test_consume_refuses_at_the_limit_and_takes_nothing(client, path):
    Quota.objects.create(client=client, channel="sms", limit=1, used=1)
    Quota.objects.create(client=None, channel="sms", limit=5)
    with pytest.raises(InsufficientSMSQuota), transaction.atomic():
        Quota.objects.consume(client.pk, "sms")
    assert sorted(Quota.objects.values_list("used", flat=True)) == [0, 1]


def test_a_zero_limit_refuses_and_the_error_names_the_channel(client, path):
    Quota.objects.create(client=None, channel="email", limit=0)
    with pytest.raises(InsufficientEmailQuota), transaction.atomic():
        Quota.objects.consume(client.pk, "email")


def test_consume_nothing_checks_that_one_more_would_fit(client, path):
    quota = Quota.objects.create(client=client, channel="sms", limit=2, used=1)
    assert [q.used for q in Quota.objects.consume(client.pk, "sms", count=0)] == [1]
    Quota.objects.filter(pk=quota.pk).update(used=2)
    with pytest.raises(InsufficientSMSQuota), transaction.atomic():
        Quota.objects.consume(client.pk, "sms", count=0)
    assert Quota.objects.get().used == 2


def test_no_quota_consumes_nothing(client, path):
    assert Quota.objects.consume(client.pk, "sms") == []


def test_a_rolled_over_quota_starts_again(client, path):
    with time_machine.travel(START, tick=False):
        Quota.objects.create(
            client=client,
            channel="sms",
            limit=3,
            used=3,
            period=QuotaPeriod.DAILY,
            period_start=dt.datetime(2025, 5, 29, 16, 0, tzinfo=dt.UTC),
        )
        [taken] = Quota.objects.consume(client.pk, "sms")
    today = dt.datetime(2025, 5, 30, 16, 0, tzinfo=dt.UTC)
    assert (taken.used, taken.period_start) == (1, today)
    assert Quota.objects.values_list("used", "period_start").get() == (1, today)


def test_give_back_returns_one_message_once(client, make_token):
    Quota.objects.create(client=client, channel="sms", limit=5, used=2)
    Quota.objects.create(client=None, channel="sms", limit=5, used=2)
    token = make_token(quota_consumed=True)
    stale = row(token)  # another process's copy, still saying consumed
    assert Quota.objects.give_back(token) is True
    assert token.quota_consumed is False
    assert Quota.objects.give_back(stale) is False  # the flag was cleared in the database
    assert Quota.objects.give_back(token) is False  # and on the instance: no query
    assert list(Quota.objects.values_list("used", flat=True)) == [1, 1]
    assert row(token).quota_consumed is False


def test_give_back_leaves_a_quota_that_restarted_since_the_send(client, make_token):
    Quota.objects.create(client=client, channel="sms", limit=5, used=1, period_start=START)
    token = make_token(quota_consumed=True, created_at=START - dt.timedelta(hours=1))
    assert Quota.objects.give_back(token) is True
    assert Quota.objects.get().used == 1


def test_an_alarm_level_is_claimed_once_per_period(client):
    quota = Quota.objects.create(client=client, channel="sms", limit=10)
    first, second = START, START + dt.timedelta(days=1)
    assert Quota.objects.claim_alarm(quota.pk, 80, first) is True
    assert Quota.objects.claim_alarm(quota.pk, 80, first) is False
    assert Quota.objects.claim_alarm(quota.pk, 100, first) is True
    assert Quota.objects.claim_alarm(quota.pk, 80, first) is False
    assert Quota.objects.claim_alarm(quota.pk, 80, second) is True
