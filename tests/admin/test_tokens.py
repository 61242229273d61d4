"""The token log: read-only, never a code or hash, search in any written form, filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from django_ciam_otp.admin.tokens import recipient_key
from django_ciam_otp.models import (
    AuthSource,
    OTPToken,
)

from .pages import (
    EMAIL,
    OTHER_PHONE,
    PHONE,
    change_url,
    changelist,
    html,
    make_token,
)

pytestmark = pytest.mark.django_db

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
