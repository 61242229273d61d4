"""Quotas in the admin: this period's usage, top-up and reset, duplicates, popups."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_ciam_otp.flows.quotas import consume_quota
from django_ciam_otp.models import (
    Quota,
)

from .pages import (
    action,
    change_url,
    changelist,
    html,
    response_row,
)

pytestmark = pytest.mark.django_db

# --- quotas ---------------------------------------------------------------------------


def test_quota_list_shows_used_remaining_and_a_bar(admin_client, client_factory):
    client = client_factory(sms_quota=10).client
    Quota.objects.filter(client=client).update(used=4)
    Quota.objects.create(client=None, channel="email", limit=100)
    response = admin_client.get(changelist("quota"))
    row = response_row(response, client.name)
    assert '<td class="field-used_now">4</td>' in row
    assert '<td class="field-remaining_now">6</td>' in row
    assert '<meter class="ciam-otp-usage"' in row and 'value="40.0"' in row
    assert "Site-wide" in html(response)

    # A quota without reset shows no period start (its stored one is a placeholder).
    assert '<td class="field-period_began">–</td>' in row

    site = admin_client.get(changelist("quota"), {"scope": "site"})
    assert [q.client for q in site.context["cl"].result_list] == [None]


def test_top_up_asks_for_an_amount_and_adds_it_atomically(admin_client, client_factory):
    quotas = [
        Quota.objects.get(client=client_factory(sms_quota=10).client),
        Quota.objects.get(client=client_factory(sms_quota=50).client),
    ]
    form = action(admin_client, "quota", "top_up", quotas)
    assert form.status_code == 200 and 'name="amount"' in html(form)

    invalid = action(admin_client, "quota", "top_up", quotas, post="yes", amount="0")
    assert invalid.status_code == 200 and "errorlist" in html(invalid)

    with CaptureQueriesContext(connection) as queries:
        done = action(admin_client, "quota", "top_up", quotas, post="yes", amount="25")
    assert done.status_code == 302
    assert sorted(Quota.objects.values_list("limit", flat=True)) == [35, 75]
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "ciam_otp_quota"')]
    assert len(updates) == 1
    assert re.search(r'"limit" = \("ciam_otp_quota"\."limit" \+ 25\)', updates[0]), updates
    assert '"used"' not in updates[0]


def test_top_up_button_on_the_change_page(admin_client, client_factory):
    quota = Quota.objects.get(client=client_factory(sms_quota=10).client)
    url = reverse("admin:ciam_otp_quota_top_up", args=[quota.pk])
    assert url in html(admin_client.get(change_url("quota", quota.pk)))
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"amount": "5"}).status_code == 302
    quota.refresh_from_db()
    assert quota.limit == 15


def test_reset_period_asks_first_then_zeroes_usage(admin_client, client_factory):
    client = client_factory(sms_quota=10, email_quota=10, quota_period="daily").client
    Quota.objects.filter(client=client).update(used=7, period_start=timezone.now())
    quotas = list(Quota.objects.filter(client=client))
    confirm = action(admin_client, "quota", "reset_period", quotas)
    assert confirm.status_code == 200
    assert set(Quota.objects.values_list("used", flat=True)) == {7}
    action(admin_client, "quota", "reset_period", quotas, post="yes")
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    for quota in Quota.objects.all():
        assert (quota.used, quota.period_start) == (0, today)


def test_quota_change_form_keeps_a_concurrent_consumption(admin_client, client_factory):
    client = client_factory(sms_quota=10).client
    quota = Quota.objects.get(client=client)
    url = change_url("quota", quota.pk)
    page = html(admin_client.get(url))
    assert 'name="used"' not in page and 'name="limit"' in page
    consume_quota(client, "sms")  # a send lands while the admin edits
    consume_quota(client, "sms")
    response = admin_client.post(url, {"limit": "20", "period": "none", "used": "0"})
    assert response.status_code == 302
    quota.refresh_from_db()
    assert (quota.limit, quota.used) == (20, 2)


def test_quota_add_refuses_a_duplicate_clearly(admin_client, client_factory):
    client = client_factory(sms_quota=10).client
    response = admin_client.post(
        reverse("admin:ciam_otp_quota_add"),
        {"client": client.pk, "channel": "sms", "limit": "5", "period": "none"},
    )
    assert response.status_code == 200
    assert "already has a SMS quota" in html(response)
    Quota.objects.create(client=None, channel="sms", limit=1)
    response = admin_client.post(
        reverse("admin:ciam_otp_quota_add"), {"channel": "sms", "limit": "5", "period": "none"}
    )
    assert "already a site-wide SMS quota" in html(response)


@time_machine.travel(dt.datetime(2025, 3, 10, 15, 30, tzinfo=dt.UTC), tick=False)
def test_new_daily_quota_starts_today(admin_client, client_factory):
    client = client_factory().client
    response = admin_client.post(
        reverse("admin:ciam_otp_quota_add"),
        {"client": client.pk, "channel": "sms", "limit": "5", "period": "daily"},
    )
    assert response.status_code == 302
    quota = Quota.objects.get(client=client)
    # 15:30 UTC is 23:30 in Asia/Shanghai: the period began that local midnight.
    assert quota.period_start == dt.datetime(2025, 3, 9, 16, 0, tzinfo=dt.UTC)


def test_quota_client_field_cannot_create_clients_in_a_popup(admin_client):
    page = html(admin_client.get(reverse("admin:ciam_otp_quota_add")))
    assert 'id="add_id_client"' not in page
    assert 'id="change_id_client"' in page  # the other related-object links stay
