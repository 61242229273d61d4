"""``create_otp_client``: make an API client for deploy scripts (SPEC.md section 6)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_ciam_otp.models import OTPClient, QuotaPeriod
from django_ciam_otp.services import create_client


def non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Create an API client. The secret is printed once and stored only as a keyed hash."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--client-id", help="Default: 128 random bits, URL-safe.")
        parser.add_argument("--client-secret", help="Default: 256 random bits, URL-safe.")
        parser.add_argument(
            "--sms-quota", type=non_negative, help="Messages this client may send by SMS."
        )
        parser.add_argument("--email-quota", type=non_negative, help="Messages by email.")
        parser.add_argument(
            "--quota-period",
            choices=QuotaPeriod.values,
            default=QuotaPeriod.NONE,
            help="When the quotas reset (default: never).",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")

    def handle(self, *args: Any, **options: Any) -> None:
        client_id = options["client_id"]
        if client_id is not None and OTPClient.objects.filter(client_id=client_id).exists():
            raise CommandError(f"A client with client_id {client_id!r} already exists.")
        if options["client_secret"] is not None and not options["client_secret"]:
            raise CommandError("--client-secret must not be empty.")
        try:
            client, secret = create_client(
                options["name"],
                client_id=client_id,
                client_secret=options["client_secret"],
                sms_quota=options["sms_quota"],
                email_quota=options["email_quota"],
                quota_period=options["quota_period"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": client.client_id, "client_secret": secret}))
        else:
            self.stdout.write(f"client_id:     {client.client_id}\nclient_secret: {secret}")
            self.stdout.write("Store the secret now: it cannot be shown again.")
