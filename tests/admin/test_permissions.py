"""Who sees what: staff permissions, no secret on any page, the admin in Simplified Chinese."""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_ciam_otp.models import (
    AuthSource,
    OTPClient,
    OTPToken,
    Quota,
)
from tests.conftest import ApiClient

from .pages import (
    PHONE,
    action,
    change_url,
    changelist,
    create_client_in_admin,
    html,
    make_token,
    secrets_on,
    staff_client,
)

pytestmark = pytest.mark.django_db

# --- permissions ----------------------------------------------------------------------


def test_staff_without_permissions_sees_nothing(django_user_model, api_client, sms_source):
    http = staff_client(django_user_model)
    token = make_token(api_client.client)
    quota = Quota.objects.create(client=None, channel="sms", limit=5)
    index = html(http.get(reverse("admin:index")))
    assert "ciam_otp" not in index and "One-time passcodes" not in index
    assert http.get(reverse("admin:app_list", args=["ciam_otp"])).status_code == 404
    forbidden = [
        changelist("authsource"),
        changelist("otpclient"),
        changelist("quota"),
        changelist("otptoken"),
        change_url("otpclient", api_client.client.pk),
        change_url("otptoken", token.pk),
        reverse("admin:ciam_otp_otpclient_add"),
        reverse("admin:ciam_otp_dashboard"),
        reverse("admin:ciam_otp_otpclient_rotate_secret", args=[api_client.client.pk]),
        reverse("admin:ciam_otp_quota_top_up", args=[quota.pk]),
    ]
    for url in forbidden:
        assert http.get(url).status_code == 403, url
    assert (
        http.post(
            reverse("admin:ciam_otp_otpclient_rotate_secret", args=[api_client.client.pk]),
            {"post": "yes"},
        ).status_code
        == 403
    )
    api_client.client.refresh_from_db()
    assert api_client.client.check_secret(api_client.secret)


def test_view_only_staff_can_look_but_not_rotate_or_top_up(
    django_user_model, api_client: ApiClient
):
    http = staff_client(django_user_model, "view_otpclient", "view_quota")
    client = api_client.client
    quota = Quota.objects.create(client=client, channel="sms", limit=5)
    listing = http.get(changelist("otpclient"))
    assert listing.status_code == 200 and "rotate_secret" not in html(listing)
    assert reverse("admin:ciam_otp_otpclient_rotate_secret", args=[client.pk]) not in html(
        http.get(change_url("otpclient", client.pk))
    )
    rotate = reverse("admin:ciam_otp_otpclient_rotate_secret", args=[client.pk])
    assert http.post(rotate, {"post": "yes"}).status_code == 403
    refused = action(http, "otpclient", "rotate_secret", [client], post="yes")
    assert not secrets_on(refused)
    client.refresh_from_db()
    assert client.check_secret(api_client.secret)

    assert "top_up" not in html(http.get(changelist("quota")))
    assert (
        http.post(
            reverse("admin:ciam_otp_quota_top_up", args=[quota.pk]), {"amount": "5"}
        ).status_code
        == 403
    )
    action(http, "quota", "top_up", [quota], post="yes", amount="5")
    assert (
        http.post(change_url("quota", quota.pk), {"limit": "99", "period": "none"}).status_code
        == 403
    )
    quota.refresh_from_db()
    assert quota.limit == 5

    # Quotas but not the token log: the dashboard shows quotas only.
    dashboard = http.get(reverse("admin:ciam_otp_dashboard"))
    assert dashboard.status_code == 200
    assert dashboard.context["dashboard"].channels == []
    assert dashboard.context["dashboard"].quotas is not None
    assert 'id="ciam-otp-traffic"' not in html(dashboard)


def test_token_viewer_cannot_see_clients(django_user_model, api_client):
    http = staff_client(django_user_model, "view_otptoken")
    make_token(api_client.client)
    assert http.get(changelist("otptoken")).status_code == 200
    assert http.get(changelist("otpclient")).status_code == 403
    dashboard = http.get(reverse("admin:ciam_otp_dashboard"))
    assert dashboard.context["dashboard"].quotas is None
    assert 'id="ciam-otp-quotas"' not in html(dashboard)


# --- nothing secret anywhere ----------------------------------------------------------


def test_no_admin_page_shows_a_secret_or_hash(
    admin_client, api, client_factory, sms_source, sms_outbox
):
    """Crawl every page of the app after real traffic; no secret, hash or code may appear."""
    caller = client_factory(sms_quota=100)
    _new, new_secret, _response = create_client_in_admin(admin_client, "Created in admin")
    sent = api.send({"phone_number": PHONE, "auth_source_id": "SMS_SOURCE"}, auth=caller)
    assert sent.status_code == 200
    forbidden = {caller.secret, new_secret, sent.json()["otp_token"], sms_outbox[-1].code}
    for client in OTPClient.objects.all():
        forbidden.add(client.secret_hash)
    for token in OTPToken.objects.all():
        forbidden |= {token.token_hash, token.code_hash, token.recipient_hash}

    urls = [reverse("admin:index"), reverse("admin:app_list", args=["ciam_otp"])]
    urls.append(reverse("admin:ciam_otp_dashboard"))
    for model, objects in (
        ("authsource", AuthSource.objects.all()),
        ("otpclient", OTPClient.objects.all()),
        ("quota", Quota.objects.all()),
        ("otptoken", OTPToken.objects.all()),
    ):
        urls.append(changelist(model))
        for obj in objects:
            urls.append(change_url(model, obj.pk))
            urls.append(reverse(f"admin:ciam_otp_{model}_history", args=[obj.pk]))
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = html(response)
        leaked = [value for value in forbidden if value in body]
        assert not leaked, (url, leaked)


# --- translation ----------------------------------------------------------------------


def test_admin_pages_speak_simplified_chinese(admin_client, api_client):
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    page = admin_client.get(reverse("admin:ciam_otp_otpclient_add"), **zh)
    client_id = page.context["adminform"].form.initial["client_id"]
    created = admin_client.post(
        reverse("admin:ciam_otp_otpclient_add"), {"name": "商店", "client_id": client_id}, **zh
    )
    assert "API 客户端已创建" in html(created) and ">复制</button>" in html(created)
    assert secrets_on(created)
    dashboard = admin_client.get(reverse("admin:ciam_otp_dashboard"), **zh)
    assert "今日一次性验证码" in html(dashboard)
    change = admin_client.get(change_url("otpclient", api_client.client.pk), **zh)
    assert "轮换密钥" in html(change)
