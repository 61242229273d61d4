"""``load_demo_data``: the seed's own clients and auth sources, so its samples work verbatim.

It also creates the client the demo's own pages act as (``CIAM_OTP["SITE_CLIENT_ID"]``,
``DEMO_SITE_CLIENT`` by default) with a random secret nobody needs: the pages
call the Python API, which takes the client object, not its secret.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from django_ciam_otp.conf import otp_settings
from django_ciam_otp.flows.provisioning import create_client
from django_ciam_otp.models import AuthSource, OTPClient

CLIENTS = [
    ("Tenant client", "TENANT_CLIENT_ID", "TENANT_CLIENT_SECRET"),
    ("Client 4", "CLIENT_4_ID", "CLIENT_4_SECRET"),
]
SOURCES = [
    ("MOCK_SMS_OTP_AUTH_SOURCE_ID", "sms", "SMS code login"),
    ("MOCK_EMAIL_OTP_AUTH_SOURCE_ID", "email", "Email code login"),
]


class Command(BaseCommand):
    help = "Create the seed's demo clients and auth sources (idempotent; env vars override values)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, id_var, secret_var in CLIENTS:
            client_id = os.environ.get(id_var, id_var)
            secret = os.environ.get(secret_var, secret_var)
            client = OTPClient.objects.filter(client_id=client_id).first()
            if client is None:
                create_client(name, client_id=client_id, client_secret=secret)
            else:
                client.set_secret(secret)
                client.enabled = True
                client.save()
            self.stdout.write(f"client {client_id!r} ready")
        for var, channel, name in SOURCES:
            source_id = os.environ.get(var, var)
            AuthSource.objects.update_or_create(
                id=source_id,
                defaults={"channel": channel, "name": name, "enabled": True},
            )
            self.stdout.write(f"auth source {source_id!r} ({channel}) ready")
        self.site_client()

    def site_client(self) -> None:
        client_id = otp_settings.SITE_CLIENT_ID or "DEMO_SITE_CLIENT"
        client = OTPClient.objects.filter(client_id=client_id).first()
        if client is None:
            create_client("Demo site pages", client_id=client_id)  # random secret
        elif not client.enabled:
            client.enabled = True
            client.save(update_fields=["enabled"])
        self.stdout.write(f"site client {client_id!r} ready")
