"""``create_auth_source``: add (or update) an auth source for deploy scripts (SPEC.md section 6)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_ciam_otp.models import AuthSource, Channel


class Command(BaseCommand):
    help = "Create an auth source, or update the one with this id (so scripts can rerun it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", required=True, dest="source_id")
        parser.add_argument("--channel", required=True, choices=Channel.values)
        parser.add_argument(
            "--code-length", type=int, default=6, help="4 to 10 digits (default 6)."
        )
        parser.add_argument("--validity", type=int, default=60, help="Seconds (default 60).")
        parser.add_argument("--name", default="")
        parser.add_argument("--disabled", action="store_true")
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")

    def handle(self, *args: Any, **options: Any) -> None:
        source = AuthSource.objects.filter(pk=options["source_id"]).first() or AuthSource(
            id=options["source_id"]
        )
        created = source._state.adding
        source.channel = options["channel"]
        source.code_length = options["code_length"]
        source.code_validity = options["validity"]
        source.name = options["name"] or source.name
        source.enabled = not options["disabled"]
        try:
            source.full_clean(validate_unique=False)
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        source.save()
        if options["json"]:
            self.stdout.write(json.dumps({"id": source.id, "created": created}))
        else:
            self.stdout.write(f"{'Created' if created else 'Updated'} auth source {source.id}.")
