"""The admin: auth sources, API clients (secret shown once), quotas, the read-only token log,
the dashboard and permissions. Pages are fetched as an admin would, and their HTML is checked
for anything secret."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_ciam_otp import admin as otp_admin
from django_ciam_otp import crypto
from django_ciam_otp.admin.tokens import recipient_key
from django_ciam_otp.flows.quotas import consume_quota
from django_ciam_otp.models import (
    AuthSource,
    BlockedPrefix,
    OTPClient,
    OTPToken,
    Quota,
    TestRecipient,
)
from tests.conftest import ApiClient, basic_auth

pytestmark = pytest.mark.django_db

PHONE = "+8613612345678"
OTHER_PHONE = "+8613912345678"
EMAIL = "mike@example.com"
SECRET_RE = re.compile(r'<code id="ciam-otp-client-secret(?:-\d+)?"[^>]*>([^<]+)</code>')
CLIENT_ID_RE = re.compile(r'<code id="ciam-otp-client-id(?:-\d+)?"[^>]*>([^<]+)</code>')


# --- registration -----------------------------------------------------------------------


def test_importing_the_admin_package_registers_every_model_with_its_admin():
    """The package's modules register on the default site as the single admin.py did."""
    expected = {
        AuthSource: otp_admin.AuthSourceAdmin,
        OTPClient: otp_admin.OTPClientAdmin,
        Quota: otp_admin.QuotaAdmin,
        OTPToken: otp_admin.OTPTokenAdmin,
        TestRecipient: otp_admin.TestRecipientAdmin,
        BlockedPrefix: otp_admin.BlockedPrefixAdmin,
    }
    registered = {
        model: type(admin.site.get_model_admin(model))
        for model in apps.get_app_config("ciam_otp").get_models()
        if admin.site.is_registered(model)
    }
    assert registered == expected


# --- helpers --------------------------------------------------------------------------


def html(response: Any) -> str:
    return response.content.decode()


def secrets_on(response: Any) -> list[str]:
    return SECRET_RE.findall(html(response))


def changelist(model: str) -> str:
    return reverse(f"admin:ciam_otp_{model}_changelist")


def change_url(model: str, pk: Any) -> str:
    return reverse(f"admin:ciam_otp_{model}_change", args=[pk])


def make_token(
    client: OTPClient,
    recipient: str = PHONE,
    *,
    channel: str | None = None,
    usage: str = "login",
    status: str = "pending",
    delivery_status: str = "sent",
    created_at: dt.datetime | None = None,
    auth_source: AuthSource | None = None,
    provider_message_id: str = "",
) -> OTPToken:
    """A token row as the send service writes it (hashes, masked recipient)."""
    now = created_at or timezone.now()
    token_hash = crypto.hash_token(crypto.new_otp_token())
    return OTPToken.objects.create(
        token_hash=token_hash,
        client=client,
        auth_source=auth_source,
        channel=channel or ("email" if "@" in recipient else "sms"),
        usage=usage,
        recipient_hash=crypto.hash_recipient(recipient),
        recipient_masked=crypto.mask_recipient(recipient),
        code_hash=crypto.hash_code(token_hash, "123456"),
        code_length=6,
        code_expires_at=now + dt.timedelta(seconds=60),
        expires_at=now + dt.timedelta(seconds=300),
        status=status,
        delivery_status=delivery_status,
        created_at=now,
        provider_message_id=provider_message_id,
    )


def action(http: Client, model: str, name: str, objects: Iterable[Any], **extra: Any) -> Any:
    data = {"action": name, "_selected_action": [o.pk for o in objects], **extra}
    return http.post(changelist(model), data)


def staff_client(django_user_model: Any, *codenames: str) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="ciam_otp", codename__in=codenames)
    )
    http = Client()
    http.force_login(user)
    return http


def create_client_in_admin(http: Client, name: str = "Shop") -> tuple[OTPClient, str, Any]:
    page = http.get(reverse("admin:ciam_otp_otpclient_add"))
    client_id = page.context["adminform"].form.initial["client_id"]
    response = http.post(
        reverse("admin:ciam_otp_otpclient_add"),
        {"name": name, "client_id": client_id, "enabled": "on"},
    )
    assert response.status_code == 200, response.content
    [secret] = secrets_on(response)
    return OTPClient.objects.get(client_id=client_id), secret, response


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


# --- API clients ----------------------------------------------------------------------


def test_add_form_offers_a_generated_client_id(admin_client):
    first = admin_client.get(reverse("admin:ciam_otp_otpclient_add"))
    second = admin_client.get(reverse("admin:ciam_otp_otpclient_add"))
    ids = [r.context["adminform"].form.initial["client_id"] for r in (first, second)]
    assert ids[0] != ids[1] and all(len(i) >= 22 for i in ids)
    assert ids[0] in html(first)
    # One button only: the next page must be the secret page.
    assert 'name="_continue"' not in html(first) and 'name="_addanother"' not in html(first)


def test_creating_a_client_shows_its_secret_once(admin_client):
    client, secret, response = create_client_in_admin(admin_client)
    page = html(response)
    assert len(secret) >= 43  # 256 bits, URL-safe base64
    assert client.check_secret(secret)
    assert CLIENT_ID_RE.findall(page) == [client.client_id]
    assert (
        'id="ciam-otp-copy-secret"' in page and 'data-copy-target="ciam-otp-client-secret"' in page
    )
    assert "copy_secret.js" in page
    assert client.secret_hash not in page
    assert "no-store" in response["Cache-Control"]

    later = [
        changelist("otpclient"),
        change_url("otpclient", client.pk),
        reverse("admin:ciam_otp_otpclient_history", args=[client.pk]),
        reverse("admin:ciam_otp_otpclient_delete", args=[client.pk]),
        reverse("admin:app_list", args=["ciam_otp"]),
        reverse("admin:index"),
        reverse("admin:ciam_otp_dashboard"),
    ]
    for url in later:
        body = html(admin_client.get(url))
        assert secret not in body, url
        assert client.secret_hash not in body, url
        assert "ciam-otp-client-secret" not in body, url


def test_the_new_credentials_work_against_otp_send(admin_client, api, sms_source, sms_outbox):
    _client, secret, response = create_client_in_admin(admin_client)
    [client_id] = CLIENT_ID_RE.findall(html(response))
    sent = api.send(
        {"phone_number": "13612345678", "auth_source_id": "SMS_SOURCE"},
        auth=basic_auth(client_id, secret),
    )
    assert sent.status_code == 200, sent.content
    assert len(sms_outbox[-1].code) == 6


def test_resubmitting_the_add_form_does_not_create_a_second_client(admin_client):
    page = admin_client.get(reverse("admin:ciam_otp_otpclient_add"))
    data = {"name": "Shop", "client_id": page.context["adminform"].form.initial["client_id"]}
    assert secrets_on(admin_client.post(reverse("admin:ciam_otp_otpclient_add"), data))
    again = admin_client.post(reverse("admin:ciam_otp_otpclient_add"), data)
    assert again.status_code == 200 and not secrets_on(again)
    assert OTPClient.objects.count() == 1


def test_rotate_action_asks_first_then_shows_the_new_secret_once(admin_client, api_client):
    client = api_client.client
    old_hash = client.secret_hash
    confirm = action(admin_client, "otpclient", "rotate_secret", [client])
    assert confirm.status_code == 200 and not secrets_on(confirm)
    assert "stops working" in html(confirm)
    client.refresh_from_db()
    assert client.secret_hash == old_hash

    response = action(admin_client, "otpclient", "rotate_secret", [client], post="yes")
    [secret] = secrets_on(response)
    client.refresh_from_db()
    assert client.check_secret(secret)
    assert not client.check_secret(api_client.secret)
    assert client.secret_hash not in html(response) and old_hash not in html(response)
    assert "no-store" in response["Cache-Control"]
    for url in (changelist("otpclient"), change_url("otpclient", client.pk)):
        assert secret not in html(admin_client.get(url))


def test_rotating_several_clients_gives_each_its_own_copyable_secret(admin_client, client_factory):
    clients = [client_factory().client, client_factory().client]
    response = action(admin_client, "otpclient", "rotate_secret", clients, post="yes")
    page = html(response)
    found = dict(zip(CLIENT_ID_RE.findall(page), secrets_on(response), strict=True))
    assert set(found) == {c.client_id for c in clients}
    for client in clients:
        client.refresh_from_db()
        assert client.check_secret(found[client.client_id])
    assert 'data-copy-target="ciam-otp-client-secret-2"' in page


def test_rotate_button_on_the_change_page(admin_client, api_client):
    client = api_client.client
    url = reverse("admin:ciam_otp_otpclient_rotate_secret", args=[client.pk])
    assert url in html(admin_client.get(change_url("otpclient", client.pk)))
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and not secrets_on(confirm)
    [secret] = secrets_on(admin_client.post(url, {"post": "yes"}))
    client.refresh_from_db()
    assert client.check_secret(secret) and not client.check_secret(api_client.secret)


def test_client_enable_disable_and_last_used(admin_client, api, api_client, sms_source):
    action(admin_client, "otpclient", "disable", [api_client.client])
    refused = api.send({"phone_number": PHONE, "auth_source_id": "SMS_SOURCE"}, auth=api_client)
    assert refused.status_code == 401
    action(admin_client, "otpclient", "enable", [api_client.client])
    ok = api.send({"phone_number": PHONE, "auth_source_id": "SMS_SOURCE"}, auth=api_client)
    assert ok.status_code == 200
    api_client.client.refresh_from_db()
    assert api_client.client.last_used_at is not None
    row = response_row(admin_client.get(changelist("otpclient")), api_client.client.client_id)
    assert "field-last_used_at" in row and "-</td>" not in row.split("field-last_used_at")[1][:30]


def response_row(response: Any, text: str) -> str:
    """The result-table row mentioning ``text`` (the nav sidebar has rows too)."""
    results = html(response).split('id="result_list"', 1)[1]
    return next(r for r in results.split("<tr") if text in r)


def test_client_change_form_never_undoes_concurrent_writes(admin_client, api_client):
    """An admin renaming a client must not restore an old secret or last_used_at."""
    client = api_client.client
    admin_client.get(change_url("otpclient", client.pk))  # the admin opens the form ...
    concurrent_secret = OTPClient.objects.get(pk=client.pk).set_secret("rotated-meanwhile")
    OTPClient.objects.filter(pk=client.pk).update(
        secret_hash=crypto.keyed_hash(crypto.PURPOSE_CLIENT_SECRET, concurrent_secret),
        last_used_at=timezone.now(),
    )
    response = admin_client.post(change_url("otpclient", client.pk), {"name": "Renamed"})
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.name == "Renamed"
    assert client.check_secret("rotated-meanwhile")
    assert client.last_used_at is not None


def test_client_change_page_lists_its_quotas(admin_client, client_factory):
    client = client_factory(sms_quota=10).client
    page = html(admin_client.get(change_url("otpclient", client.pk)))
    assert "10 of 10 left" in page
    assert reverse("admin:ciam_otp_quota_add") + f"?client={client.pk}" in page


def test_a_client_with_logged_tokens_is_disabled_not_deleted(admin_client, client_factory):
    used, unused = client_factory().client, client_factory().client
    for _ in range(3):
        make_token(used)
    delete = reverse("admin:ciam_otp_otpclient_delete", args=[used.pk])
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(delete)
    assert page.status_code == 200
    assert "permission to delete the following types of objects" in html(page)
    assert "+86136****5678" not in html(page)  # the tokens are counted, not listed
    assert len(queries) < 15
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert OTPClient.objects.filter(pk=used.pk).exists() and OTPToken.objects.count() == 3

    other = reverse("admin:ciam_otp_otpclient_delete", args=[unused.pk])
    assert admin_client.post(other, {"post": "yes"}).status_code == 302
    assert not OTPClient.objects.filter(pk=unused.pk).exists()


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


# --- token log ------------------------------------------------------------------------


def test_token_log_is_read_only(admin_client, api_client):
    token = make_token(api_client.client)
    assert admin_client.get(reverse("admin:ciam_otp_otptoken_add")).status_code == 403
    detail = admin_client.get(change_url("otptoken", token.pk))
    assert detail.status_code == 200
    page = html(detail)
    assert 'name="_save"' not in page and 'name="status"' not in page
    assert reverse("admin:ciam_otp_otptoken_delete", args=[token.pk]) not in page
    assert (
        admin_client.post(change_url("otptoken", token.pk), {"status": "verified"}).status_code
        == 403
    )
    delete = reverse("admin:ciam_otp_otptoken_delete", args=[token.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    listing = admin_client.get(changelist("otptoken"))
    assert "delete_selected" not in html(listing) and "action-checkbox" not in html(listing)
    token.refresh_from_db()
    assert token.status == "pending"


def test_token_log_shows_the_columns_and_never_a_code_or_hash(
    admin_client, api, api_client, sms_outbox, mailoutbox
):
    AuthSource.objects.create(id="LONG_CODES", channel="sms", code_length=10, code_validity=120)
    sent = api.send({"phone_number": PHONE, "auth_source_id": "LONG_CODES"}, auth=api_client)
    assert sent.status_code == 200
    api.send({"email": EMAIL, "usage": "signup"}, auth=api_client)
    otp_token = sent.json()["otp_token"]
    code = sms_outbox[-1].code
    tokens = list(OTPToken.objects.all())
    assert len(tokens) == 2

    pages = [admin_client.get(changelist("otptoken"))]
    pages += [admin_client.get(change_url("otptoken", t.pk)) for t in tokens]
    pages += [
        admin_client.get(reverse("admin:ciam_otp_otptoken_history", args=[t.pk])) for t in tokens
    ]
    for response in pages:
        assert response.status_code == 200
        body = html(response)
        for token in tokens:
            for value in (token.token_hash, token.code_hash, token.recipient_hash):
                assert value not in body
        assert code not in body and otp_token not in body
        assert PHONE not in body and "13612345678" not in body and EMAIL not in body

    listing = html(pages[0])
    assert "+86136****5678" in listing and "m***@example.com" in listing
    sms = OTPToken.objects.get(channel="sms")
    for column in (
        "recipient_masked",
        "usage",
        "channel",
        "client",
        "auth_source",
        "created_at",
        "expires_at",
        "attempts",
        "delivery_status",
        "provider_message_id",
        "status",
    ):
        assert f"column-{column}" in listing, column
    assert sms.provider_message_id and sms.provider_message_id in listing
    assert "LONG_CODES" in listing


@pytest.mark.parametrize(
    "query",
    [
        "+8613612345678",
        "13612345678",
        "136 1234 5678",
        "+86-136-1234-5678",
        "８６１３６１２３４５６７８",
    ],
)
def test_search_finds_a_phone_number_in_any_written_form(admin_client, api_client, query):
    wanted = make_token(api_client.client, PHONE)
    make_token(api_client.client, OTHER_PHONE)
    make_token(api_client.client, EMAIL)
    response = admin_client.get(changelist("otptoken"), {"q": query})
    assert list(response.context["cl"].result_list) == [wanted]


def test_search_by_email_is_normalised(admin_client, api_client):
    wanted = make_token(api_client.client, EMAIL)
    make_token(api_client.client, "other@example.com")
    response = admin_client.get(changelist("otptoken"), {"q": "  Mike@EXAMPLE.com "})
    assert list(response.context["cl"].result_list) == [wanted]


@pytest.mark.parametrize("query", ["1361234", "5678", "+86136****5678", "m***@example.com", "mike"])
def test_search_never_matches_parts_or_masks(admin_client, api_client, query):
    make_token(api_client.client, PHONE)
    make_token(api_client.client, EMAIL)
    response = admin_client.get(changelist("otptoken"), {"q": query})
    assert list(response.context["cl"].result_list) == []


def test_search_by_provider_message_id(admin_client, api_client):
    wanted = make_token(api_client.client, provider_message_id="2433:1234567890")
    make_token(api_client.client, provider_message_id="2433:999")
    response = admin_client.get(changelist("otptoken"), {"q": "2433:1234567890"})
    assert list(response.context["cl"].result_list) == [wanted]


def test_recipient_key_normalises_or_gives_none():
    assert recipient_key("136-1234-5678") == PHONE
    assert recipient_key("Mike@Example.com") == EMAIL
    assert recipient_key("not a recipient") is None


def test_token_log_filters(admin_client, client_factory, sms_source):
    first, second = client_factory().client, client_factory().client
    verified = make_token(first, status="verified", auth_source=sms_source)
    failed = make_token(first, delivery_status="failed", status="failed")
    signup_email = make_token(second, EMAIL, usage="signup")
    old = make_token(second, created_at=timezone.now() - dt.timedelta(days=40))

    def found(**params: str) -> set[int]:
        response = admin_client.get(changelist("otptoken"), params)
        assert response.status_code == 200
        return {t.pk for t in response.context["cl"].result_list}

    assert found(status__exact="verified") == {verified.pk}
    assert found(delivery_status__exact="failed") == {failed.pk}
    assert found(channel__exact="email") == {signup_email.pk}
    assert found(usage__exact="signup") == {signup_email.pk}
    assert found(client__id__exact=str(first.pk)) == {verified.pk, failed.pk}
    assert found(auth_source__id__exact="SMS_SOURCE") == {verified.pk}
    # The value DateFieldListFilter's own "Past 7 days" link carries.
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    week_ago = str(today - dt.timedelta(days=7))
    assert old.pk not in found(created_at__gte=week_ago)
    assert found(created_at__gte=week_ago) == {verified.pk, failed.pk, signup_email.pk}


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


# --- test recipients, blocked prefixes, dashboard on the app index --------------------------


@pytest.mark.django_db
def test_test_recipient_admin_normalises(admin_client):
    from django_ciam_otp.models import TestRecipient

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
    assert 'id="ciam-otp-stop-sms"' in page and "AuthFailure" in page and "bad key" in page
    assert admin_client.get(reverse("admin:ciam_otp_dashboard_resume")).status_code == 405
    response = admin_client.post(reverse("admin:ciam_otp_dashboard_resume"), {"channel": "sms"})
    assert response.status_code == 302
    assert breaker.current("sms") is None
    assert 'id="ciam-otp-stop-sms"' not in html(
        admin_client.get(reverse("admin:ciam_otp_dashboard"))
    )


def test_resuming_needs_the_right_to_change_auth_sources(django_user_model, db):
    from django_ciam_otp import breaker

    breaker.trip("sms", "x.Backend", "AuthFailure", "bad key")
    viewer = staff_client(django_user_model, "view_otptoken")
    page = html(viewer.get(reverse("admin:ciam_otp_dashboard")))
    assert 'id="ciam-otp-stop-sms"' in page and "resume deliveries" not in page
    denied = viewer.post(reverse("admin:ciam_otp_dashboard_resume"), {"channel": "sms"})
    assert denied.status_code == 403
    assert breaker.current("sms") is not None
