"""The dashboard: today's counts, quotas left, bounded queries, billed units, stopped channels."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_ciam_otp.models import (
    OTPClient,
    OTPToken,
    Quota,
)

from .pages import (
    EMAIL,
    change_url,
    changelist,
    html,
    make_token,
    staff_client,
)

pytestmark = pytest.mark.django_db

# --- dashboard ------------------------------------------------------------------------


NOON = dt.datetime(2025, 3, 10, 4, 0, tzinfo=dt.UTC)  # 12:00 in Asia/Shanghai


@time_machine.travel(NOON, tick=False)
def test_dashboard_counts_today_per_channel(admin_client, client_factory):
    client = client_factory().client
    for _ in range(3):
        make_token(client, delivery_status="sent")
    make_token(client, delivery_status="sent", status="verified")
    make_token(client, delivery_status="failed", status="failed")
    make_token(client, delivery_status="queued")
    make_token(client, delivery_status="suppressed", usage="reset_password")
    make_token(client, EMAIL, delivery_status="sent", status="verified")
    # Yesterday (23:59 local) does not count.
    make_token(client, created_at=dt.datetime(2025, 3, 9, 15, 59, tzinfo=dt.UTC))

    response = admin_client.get(reverse("admin:ciam_otp_dashboard"))
    assert response.status_code == 200
    stats = {c.channel: c for c in response.context["dashboard"].channels}
    sms, email = stats["sms"], stats["email"]
    assert (sms.sends, sms.delivered, sms.failed, sms.suppressed, sms.verified) == (6, 4, 1, 1, 1)
    assert sms.failure_rate == 20.0  # 1 failed of 5 finished deliveries
    assert (email.sends, email.delivered, email.failed, email.verified) == (1, 1, 0, 1)
    assert email.failure_rate == 0.0
    page = html(response)
    assert re.search(
        r'<tr data-channel="sms">.*?data-stat="sends">6<.*?data-stat="failure_rate">20.0 %',
        page,
        re.S,
    )
    assert re.search(r'<tr data-channel="total">.*?data-stat="sends">7<', page, re.S)


@time_machine.travel(NOON, tick=False)
def test_dashboard_shows_deliveries_and_receipt_rates_per_backend(admin_client, client_factory):
    client = client_factory().client
    for status in ("delivered", "delivered", "delivered", "undelivered"):
        make_token(client, delivery_status=status, delivery_backend="twilio")
    make_token(client, delivery_status="sent", delivery_backend="twilio")  # no receipt yet
    make_token(client, delivery_status="sent", delivery_backend="tencent")
    make_token(client, delivery_status="failed", status="failed", delivery_backend="tencent")
    make_token(client, delivery_status="queued")  # no backend yet: not listed

    response = admin_client.get(reverse("admin:ciam_otp_dashboard"))
    rows = {row.name: row for row in response.context["dashboard"].backends}
    assert set(rows) == {"twilio", "tencent"}
    twilio, tencent = rows["twilio"], rows["tencent"]
    assert (twilio.taken, twilio.delivered, twilio.undelivered, twilio.failed) == (5, 3, 1, 0)
    assert (twilio.delivered_rate, twilio.undelivered_rate) == (60.0, 20.0)
    assert (tencent.taken, tencent.failed, tencent.delivered_rate) == (1, 1, 0.0)
    page = html(response)
    assert re.search(
        r'<tr data-backend="twilio">.*?data-stat="undelivered_rate">20.0 %', page, re.S
    )
    assert "delivery_backend__exact=twilio" in page  # the backend's messages in the token log
    # A sent-then-delivered message still counts as delivered per channel.
    sms = next(c for c in response.context["dashboard"].channels if c.channel == "sms")
    assert sms.delivered == 6


@time_machine.travel(NOON, tick=False)
def test_dashboard_shows_quota_remaining_per_client(admin_client, client_factory):
    low = client_factory(name="Low", sms_quota=10).client
    Quota.objects.filter(client=low).update(used=9)
    rolled = client_factory(name="Rolled", sms_quota=10, quota_period="daily").client
    Quota.objects.filter(client=rolled).update(
        used=10, period_start=dt.datetime(2025, 3, 8, 16, 0, tzinfo=dt.UTC)
    )
    Quota.objects.create(client=None, channel="email", limit=1000, used=250)

    response = admin_client.get(reverse("admin:ciam_otp_dashboard"))
    rows = response.context["dashboard"].quotas
    summary = [(r.client_name or "site", r.channel_label, r.used, r.remaining) for r in rows]
    assert summary == [
        ("Low", "SMS", 9, 1),  # fewest left first
        ("Rolled", "SMS", 0, 10),  # yesterday's daily usage no longer counts
        ("site", "Email", 250, 750),
    ]
    page = html(response)
    assert "Site-wide" in page and 'value="90.0"' in page


def test_dashboard_queries_do_not_grow_with_the_data(
    admin_client, client_factory, django_assert_max_num_queries
):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse("admin:ciam_otp_dashboard")).status_code == 200
        return len(queries)

    client_factory(sms_quota=5)
    make_token(OTPClient.objects.get())
    small = count()
    for _ in range(10):
        client = client_factory(sms_quota=5, email_quota=5).client
        make_token(client)
        make_token(client, EMAIL)
    assert count() == small
    with django_assert_max_num_queries(small):
        admin_client.get(reverse("admin:ciam_otp_dashboard"))


def test_app_index_links_to_the_dashboard(admin_client):
    page = html(admin_client.get(reverse("admin:app_list", args=["ciam_otp"])))
    assert reverse("admin:ciam_otp_dashboard") in page
    assert reverse("admin:ciam_otp_dashboard") in html(admin_client.get(changelist("otptoken")))


# --- billed messages and stopped deliveries ------------------------------------------------


def test_the_token_log_and_dashboard_show_billed_units(admin_client, api_client):
    billed = make_token(api_client.client, provider_message_id="2433:1")
    OTPToken.objects.filter(pk=billed.pk).update(fee=2, billed_region="CN")
    make_token(api_client.client, "+8613612340000")
    log = html(admin_client.get(changelist("otptoken")))
    assert "2433:1" in log
    only_billed = admin_client.get(changelist("otptoken"), {"fee__isempty": "0"})
    assert "2433:1" in html(only_billed) and "****0000" not in html(only_billed)
    detail = html(admin_client.get(change_url("otptoken", billed.pk)))
    assert "billed units" in detail.lower() and ">CN<" in detail
    page = html(admin_client.get(reverse("admin:ciam_otp_dashboard")))
    assert 'data-stat="billed">2<' in page


def test_a_stopped_channel_is_on_the_dashboard_and_can_be_resumed(admin_client, db):
    from django_ciam_otp import breaker

    breaker.trip("sms", "django_ciam_otp.backends.sms.tencent.SMSBackend", "AuthFailure", "bad key")
    page = html(admin_client.get(reverse("admin:ciam_otp_dashboard")))
    assert 'data-stop-channel="sms"' in page and "AuthFailure" in page and "bad key" in page
    assert admin_client.get(reverse("admin:ciam_otp_dashboard_resume")).status_code == 405
    response = admin_client.post(reverse("admin:ciam_otp_dashboard_resume"), {"channel": "sms"})
    assert response.status_code == 302
    assert breaker.current("sms") is None
    assert 'data-stop-channel="sms"' not in html(
        admin_client.get(reverse("admin:ciam_otp_dashboard"))
    )


def test_resuming_needs_the_right_to_change_auth_sources(django_user_model, db):
    from django_ciam_otp import breaker

    breaker.trip("sms", "x.Backend", "AuthFailure", "bad key")
    viewer = staff_client(django_user_model, "view_otptoken")
    page = html(viewer.get(reverse("admin:ciam_otp_dashboard")))
    assert 'data-stop-channel="sms"' in page and "resume deliveries" not in page
    denied = viewer.post(reverse("admin:ciam_otp_dashboard_resume"), {"channel": "sms"})
    assert denied.status_code == 403
    assert breaker.current("sms") is not None


def test_the_dashboard_shows_the_site_wide_pumping_mode(admin_client):
    from django_ciam_otp import sitewide
    from django_ciam_otp.counters import store

    page = html(admin_client.get(reverse("admin:ciam_otp_dashboard")))
    assert "SMS to new number ranges: normal" in page
    store.add(sitewide.MODE_KEY, 1_700_000_000, 600)
    page = html(admin_client.get(reverse("admin:ciam_otp_dashboard")))
    assert "SMS to new number ranges: tightened" in page
    assert "share a budget of 60 codes an hour; 10 can go now" in page
