"""Test recipients and blocked prefixes in the admin."""

from __future__ import annotations

import pytest

from django_ciam_otp.models import (
    TestRecipient,
)

pytestmark = pytest.mark.django_db

# --- test recipients, blocked prefixes, dashboard on the app index --------------------------


@pytest.mark.django_db
def test_test_recipient_admin_normalises(admin_client):

    response = admin_client.post(
        "/admin/ciam_otp/testrecipient/add/",
        {
            "channel": "sms",
            "recipient": "+86 138-0000-0000",
            "code": "246810",
            "note": "",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content
    assert TestRecipient.objects.get().recipient == "+8613800000000"
    bad = admin_client.post(
        "/admin/ciam_otp/testrecipient/add/",
        {"channel": "sms", "recipient": "not a phone", "code": "246810", "enabled": "on"},
    )
    assert bad.status_code == 200 and TestRecipient.objects.count() == 1


@pytest.mark.django_db
def test_blocked_prefix_unblock_action(admin_client):
    from django_ciam_otp import abuse

    blocked = abuse.block_prefix("861361234", abuse.Conversion(10, 0))
    page = admin_client.get("/admin/ciam_otp/blockedprefix/")
    assert "+861361234…" in page.content.decode()
    admin_client.post(
        "/admin/ciam_otp/blockedprefix/",
        {"action": "unblock", "_selected_action": [blocked.pk]},
    )
    blocked.refresh_from_db()
    assert not blocked.is_active


@pytest.mark.django_db
def test_dashboard_numbers_on_app_index(admin_client, api, api_client):
    api.send({"usage": "signup", "phone_number": "13612345678"}, auth=api_client)
    page = admin_client.get("/admin/ciam_otp/").content.decode()
    assert 'id="ciam-otp-dashboard-link"' in page
    assert 'id="ciam-otp-traffic"' in page
    sms_row = page.split('data-channel="sms"')[1].split("</tr>")[0]
    assert '<td data-stat="sends">1</td>' in sms_row
