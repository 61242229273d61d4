"""``create_otp_client``: make an API client for deploy scripts (SPEC.md section 6)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandParser
from django.db import IntegrityError

from django_ciam_otp.flows.provisioning import create_client
from django_ciam_otp.management import scripting
from django_ciam_otp.management.scripting import Refused, ScriptCommand, UsageError
from django_ciam_otp.models import OTPClient, QuotaPeriod

#: Far above any real traffic, far below the column's maximum (top-ups add to it).
QUOTA_MAX = 10**12


def _quota_help(channel: str) -> str:
    return (
        f"Messages this client may send by {channel} per --quota-period, 0 to {QUOTA_MAX} "
        f"(0: none). Default: no {channel} quota of its own, so unlimited for this client; "
        f"a site-wide {channel} quota set in the admin still applies."
    )


class Command(ScriptCommand):
    help = (
        "Create an API client and print its client_id and client_secret. The secret is "
        "shown this once and stored only as a keyed hash. "
        "Exit status: 0 created, 1 refused (client id taken), 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name", required=True, help="Required: label shown in the admin, 1 to 100 characters."
        )
        parser.add_argument(
            "--client-id",
            metavar="ID",
            help=(
                f"Your own id: {scripting.CLIENT_ID_RULE} (RFC 3986 unreserved: it reads the same "
                "URL-encoded or not); refused if another client has it. "
                "Default: generated, 128 random bits."
            ),
        )
        parser.add_argument(
            "--client-secret",
            metavar="SECRET",
            help=(
                f"Your own secret: {scripting.CLIENT_SECRET_RULE} (a rule of this "
                "command; the Python API create_client() does not apply it). A secret "
                "given here shows in the process list and the shell history. "
                "Default: generated, 256 random bits."
            ),
        )
        parser.add_argument("--sms-quota", metavar="N", help=_quota_help("SMS"))
        parser.add_argument("--email-quota", metavar="N", help=_quota_help("email"))
        parser.add_argument(
            "--quota-period",
            choices=QuotaPeriod.values,
            help=(
                "When this client's quotas start again from zero: none (default: a quota "
                "is a total for the client's lifetime), daily (at midnight) or monthly "
                "(on the 1st), in the site's TIME_ZONE. Needs --sms-quota or --email-quota."
            ),
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help='Print {"client_id": ..., "client_secret": ...} (default: two labelled lines).',
        )

    def clean_options(self, options: dict[str, Any]) -> dict[str, Any]:
        cleaned = dict(options)
        cleaned["name"] = scripting.model_value(OTPClient, "name", options["name"], "--name")
        if not cleaned["name"].strip():
            raise UsageError("--name must not be blank.")
        if options["client_id"] is not None:
            cleaned["client_id"] = scripting.client_id(options["client_id"])
        if options["client_secret"] is not None:
            cleaned["client_secret"] = scripting.client_secret(options["client_secret"])
        for key, option in (("sms_quota", "--sms-quota"), ("email_quota", "--email-quota")):
            if options[key] is not None:
                cleaned[key] = scripting.whole_number(
                    options[key], option, minimum=0, maximum=QUOTA_MAX, unit="messages"
                )
        if options["quota_period"] is None:
            cleaned["quota_period"] = QuotaPeriod.NONE
        else:
            cleaned["quota_period"] = scripting.choice(
                options["quota_period"], "--quota-period", QuotaPeriod.values
            )
            if cleaned["sms_quota"] is None and cleaned["email_quota"] is None:
                raise UsageError("--quota-period needs --sms-quota or --email-quota.")
        return cleaned

    def handle(self, *args: Any, **options: Any) -> None:
        client_id = options["client_id"]
        if client_id is not None and OTPClient.objects.filter(client_id=client_id).exists():
            raise Refused(f"A client with client_id {client_id!r} already exists.")
        try:
            client, secret = create_client(
                options["name"],
                client_id=client_id,
                client_secret=options["client_secret"],
                sms_quota=options["sms_quota"],
                email_quota=options["email_quota"],
                quota_period=options["quota_period"],
            )
        except IntegrityError as exc:  # created meanwhile by another process
            raise Refused(f"A client with client_id {client_id!r} already exists.") from exc
        except ValidationError as exc:
            if "client_id" in getattr(exc, "error_dict", {}):
                raise Refused(f"A client with client_id {client_id!r} already exists.") from exc
            raise UsageError("; ".join(exc.messages)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": client.client_id, "client_secret": secret}))
        else:
            self.stdout.write(f"client_id:     {client.client_id}\nclient_secret: {secret}")
            self.stdout.write("Store the secret now: it cannot be shown again.")
