"""``purge_otp_tokens``: delete expired tokens and print how many (also a Celery beat task)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_ciam_otp.delivery import expire_stale_deliveries
from django_ciam_otp.services import purge_expired_tokens


class Command(BaseCommand):
    help = (
        "Close deliveries that expired in the queue (their quota comes back), then delete "
        "OTP tokens whose otp_token has expired; prints the number deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=0,
            metavar="SECONDS",
            help="Keep tokens that expired less than this long ago (for the log).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # The same order as the beat task: a token whose task never ran gives its
        # quota back before its row can go.
        expire_stale_deliveries()
        count = purge_expired_tokens(older_than=dt.timedelta(seconds=max(0, options["older_than"])))
        self.stdout.write(str(count))
