"""Auth sources in the admin: list, form limits and warnings, read-only id, actions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_ciam_otp.models import (
    AuthSource,
)

from .pages import (
    action,
    change_url,
    changelist,
    html,
)

pytestmark = pytest.mark.django_db

# --- auth sources ---------------------------------------------------------------------


def test_auth_source_list_shows_settings_and_filters(admin_client, sms_source, email_source):
    response = admin_client.get(changelist("authsource"))
    assert response.status_code == 200
    page = html(response)
    assert "SMS_SOURCE" in page and "EMAIL_SOURCE" in page
    assert "60 seconds" in page

    response = admin_client.get(changelist("authsource"), {"channel__exact": "email"})
    assert [s.pk for s in response.context["cl"].result_list] == ["EMAIL_SOURCE"]


@pytest.mark.parametrize(
    ("length", "validity", "message"),
    [
        (3, 60, "A code needs at least 4 digits."),
        (11, 60, "A code can have at most 10 digits."),
        (6, 9, "at least 10 seconds"),
        (6, 3601, "at most 3600 seconds"),
    ],
)
def test_auth_source_form_refuses_out_of_range_values(admin_client, length, validity, message):
    response = admin_client.post(
        reverse("admin:ciam_otp_authsource_add"),
        {"id": "NEW", "channel": "sms", "code_length": length, "code_validity": validity},
    )
    assert response.status_code == 200
    assert message in html(response)
    assert not AuthSource.objects.filter(pk="NEW").exists()


def test_auth_source_below_six_digits_is_saved_with_a_warning(admin_client):
    response = admin_client.post(
        reverse("admin:ciam_otp_authsource_add"),
        {"id": "SHORT", "channel": "sms", "code_length": 4, "code_validity": 120, "enabled": "on"},
        follow=True,
    )
    assert AuthSource.objects.get(pk="SHORT").code_length == 4
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and "NIST SP 800-63B" in warnings[0]


def test_auth_source_of_eight_digits_has_no_warning(admin_client):
    response = admin_client.post(
        reverse("admin:ciam_otp_authsource_add"),
        {"id": "EIGHT", "channel": "sms", "code_length": 8, "code_validity": 120, "enabled": "on"},
        follow=True,
    )
    source = AuthSource.objects.get(pk="EIGHT")
    assert (source.code_length, source.code_validity, source.enabled) == (8, 120, True)
    assert not [m for m in response.context["messages"] if m.level_tag == "warning"]


def test_validity_beyond_the_token_lifetime_warns(admin_client):
    response = admin_client.post(
        reverse("admin:ciam_otp_authsource_add"),
        {"id": "LONG", "channel": "email", "code_length": 6, "code_validity": 900},
        follow=True,
    )
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert any("300 seconds" in w for w in warnings)


def test_auth_source_id_is_read_only_after_creation(admin_client, sms_source):
    url = change_url("authsource", sms_source.pk)
    page = html(admin_client.get(url))
    assert 'name="id"' not in page and "SMS_SOURCE" in page
    response = admin_client.post(
        url, {"id": "RENAMED", "channel": "sms", "code_length": 8, "code_validity": 90}
    )
    assert response.status_code == 302
    assert not AuthSource.objects.filter(pk="RENAMED").exists()
    sms_source.refresh_from_db()
    assert (sms_source.code_length, sms_source.code_validity) == (8, 90)


def test_auth_source_enable_disable_actions(admin_client, sms_source, email_source):
    action(admin_client, "authsource", "disable", [sms_source, email_source])
    assert not AuthSource.objects.filter(enabled=True).exists()
    action(admin_client, "authsource", "enable", [sms_source])
    assert list(AuthSource.objects.filter(enabled=True)) == [sms_source]
