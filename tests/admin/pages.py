"""What the admin tests share: addresses, the pages' URLs, reading secrets off a page, staff."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_ciam_otp import crypto
from django_ciam_otp.models import (
    AuthSource,
    OTPClient,
    OTPToken,
)

PHONE = "+8613612345678"
OTHER_PHONE = "+8613912345678"
EMAIL = "mike@example.com"
SECRET_RE = re.compile(r'<code id="ciam-otp-client-secret(?:-\d+)?"[^>]*>([^<]+)</code>')
CLIENT_ID_RE = re.compile(r'<code id="ciam-otp-client-id(?:-\d+)?"[^>]*>([^<]+)</code>')


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
    delivery_backend: str = "",
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
        delivery_backend=delivery_backend,
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


def response_row(response: Any, text: str) -> str:
    """The result-table row mentioning ``text`` (the nav sidebar has rows too)."""
    results = html(response).split('id="result_list"', 1)[1]
    return next(r for r in results.split("<tr") if text in r)
