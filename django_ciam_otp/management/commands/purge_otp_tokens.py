"""``purge_otp_tokens``: delete expired tokens and print how many (also a Celery beat task)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import CommandParser

from django_ciam_otp.delivery import expire_stale_deliveries
from django_ciam_otp.flows.provisioning import purge_expired_tokens
from django_ciam_otp.management.scripting import ScriptCommand, whole_number

#: 100 years: any longer keeps every token anyway, and the cut-off date stays representable.
OLDER_THAN_MAX = 100 * 365 * 86400


class Command(ScriptCommand):
    help = (
        "Close deliveries that expired in the queue (their quota comes back), then delete "
        "OTP tokens whose otp_token has expired; prints the number deleted. "
        "Exit status: 0 done, 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default=0,
            metavar="SECONDS",
            help=(
                "Delete only tokens that expired at least this long ago, keeping the rest "
                f"for the log: a whole number of seconds, 0 to {OLDER_THAN_MAX} (100 years). "
                "Default: 0, every expired token. (The Celery beat task keeps "
                "CIAM_OTP['TOKEN_RETENTION'] instead, 7 days unless set.)"
            ),
        )

    def clean_options(self, options: dict[str, Any]) -> dict[str, Any]:
        older_than = whole_number(
            options["older_than"],
            "--older-than",
            minimum=0,
            maximum=OLDER_THAN_MAX,
            unit="seconds",
        )
        return {**options, "older_than": older_than}

    def handle(self, *args: Any, **options: Any) -> None:
        # The same order as the beat task: a token whose task never ran gives its
        # quota back before its row can go.
        expire_stale_deliveries()
        count = purge_expired_tokens(older_than=dt.timedelta(seconds=options["older_than"]))
        self.stdout.write(str(count))
