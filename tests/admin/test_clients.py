"""API clients in the admin: a secret shown once, rotation, enable/disable, their quotas."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_ciam_otp import crypto
from django_ciam_otp.models import (
    OTPClient,
    OTPToken,
)
from tests.conftest import basic_auth

from .pages import (
    CLIENT_ID_RE,
    PHONE,
    action,
    change_url,
    changelist,
    create_client_in_admin,
    html,
    make_token,
    response_row,
    secrets_on,
)

pytestmark = pytest.mark.django_db

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
