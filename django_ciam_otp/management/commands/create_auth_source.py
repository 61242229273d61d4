"""``create_auth_source``: create an auth source, or change one with ``--update`` (SPEC.md §6).

Without ``--update`` the command only ever creates: an id that exists is
refused, unless the source already is exactly what the command would create,
so a deploy script can run it on every deploy. With ``--update`` it creates the
source if the id is new, else changes the options given and nothing else, so
one script line works on a fresh site and on a running one. A source's channel
never changes: tokens already issued for it were sent on that channel and are
verified against it.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser
from django.db import IntegrityError, transaction

from django_ciam_otp.forms import RECOMMENDED_CODE_LENGTH
from django_ciam_otp.management import scripting
from django_ciam_otp.management.scripting import Refused, ScriptCommand, UsageError
from django_ciam_otp.models import (
    CODE_LENGTH_MAX,
    CODE_LENGTH_MIN,
    CODE_VALIDITY_MAX,
    CODE_VALIDITY_MIN,
    AuthSource,
    Channel,
)

#: The fields the options set, as messages name them, in the order they are reported.
FIELDS = {
    "channel": "channel",
    "code_length": "code length",
    "code_validity": "validity",
    "name": "name",
    "enabled": "state",
}


def _default(field_name: str) -> Any:
    return scripting.model_field(AuthSource, field_name).get_default()


def _shown(field: str, value: Any) -> str:
    if field == "enabled":
        return "enabled" if value else "disabled"
    return repr(value) if field == "name" else str(value)


class Command(ScriptCommand):
    help = (
        "Create an auth source. Without --update an existing id is refused, unless it "
        "already has exactly the settings this command would create (then nothing changes "
        "and it exits 0, so deploy scripts can re-run it). With --update, an existing "
        "source gets the options given and keeps the others. A source's channel never "
        "changes. Exit status: 0 done, 1 refused, 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--id",
            required=True,
            dest="source_id",
            metavar="ID",
            help=(
                "Required: the id API callers send as auth_source_id, 1 to 64 letters, "
                "digits, underscores, dots and hyphens."
            ),
        )
        parser.add_argument(
            "--channel",
            choices=Channel.values,
            help=(
                "Required to create a source (with --update too, when the id is new): how "
                "its codes are sent. The channel of an existing source never changes (tokens "
                "already issued are bound to it): giving another one is refused; create "
                "a new source instead."
            ),
        )
        parser.add_argument(
            "--code-length",
            metavar="DIGITS",
            help=(
                f"Digits per code, {CODE_LENGTH_MIN} to {CODE_LENGTH_MAX}. Default: "
                f"{_default('code_length')} when creating, unchanged with --update. Below "
                f"{RECOMMENDED_CODE_LENGTH} is accepted with a warning: NIST SP 800-63B asks "
                "for at least 20 bits, which is 6 digits."
            ),
        )
        parser.add_argument(
            "--validity",
            metavar="SECONDS",
            help=(
                f"How long a code can be used after it is sent, {CODE_VALIDITY_MIN} to "
                f"{CODE_VALIDITY_MAX} seconds. Default: {_default('code_validity')} when "
                "creating, unchanged with --update."
            ),
        )
        parser.add_argument(
            "--name",
            help=(
                "Label shown in the admin, at most 100 characters. Default: empty when "
                "creating, unchanged with --update."
            ),
        )
        enabled = parser.add_mutually_exclusive_group()
        enabled.add_argument(
            "--enabled",
            action="store_const",
            const=True,
            dest="enabled",
            help="Accept sends for this source. Default when creating; with --update, "
            "turns a disabled source back on.",
        )
        enabled.add_argument(
            "--disabled",
            action="store_const",
            const=False,
            dest="enabled",
            help="Refuse sends for this source (default: enabled when creating, "
            "unchanged with --update).",
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help=(
                "If a source has this id, change the options given and leave the others as "
                "they are; if not, create it as without --update. Default: off (create only)."
            ),
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help=(
                'Print {"id": ..., "created": true|false} (default: one sentence). '
                '"created" is false when the source existed (updated or unchanged).'
            ),
        )

    def clean_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Check every value; ``options["values"]`` holds the fields of the options given."""
        source_id = scripting.model_value(AuthSource, "id", options["source_id"], "--id")
        values: dict[str, Any] = {}
        if options.get("channel") is not None:
            values["channel"] = scripting.choice(options["channel"], "--channel", Channel.values)
        if options.get("code_length") is not None:
            values["code_length"] = scripting.whole_number(
                options["code_length"],
                "--code-length",
                minimum=CODE_LENGTH_MIN,
                maximum=CODE_LENGTH_MAX,
                unit="digits",
            )
        if options.get("validity") is not None:
            values["code_validity"] = scripting.whole_number(
                options["validity"],
                "--validity",
                minimum=CODE_VALIDITY_MIN,
                maximum=CODE_VALIDITY_MAX,
                unit="seconds",
            )
        if options.get("name") is not None:
            values["name"] = scripting.model_value(AuthSource, "name", options["name"], "--name")
        if options.get("enabled") is not None:
            values["enabled"] = bool(options["enabled"])
        if not options.get("update") and "channel" not in values:
            raise UsageError("--channel is required to create an auth source.")
        return {**options, "source_id": source_id, "values": values}

    def handle(self, *args: Any, **options: Any) -> None:
        source_id, values = options["source_id"], options["values"]
        changes: list[str] = []
        if options["update"]:
            created, changes = self.update(source_id, values)
        else:
            created = self.create(source_id, values)
        if created:
            message = f"Created auth source {source_id}."
        elif changes:
            message = f"Updated auth source {source_id}: {', '.join(changes)}."
        else:
            message = f"Auth source {source_id} already has these settings; nothing changed."
        if values.get("code_length", RECOMMENDED_CODE_LENGTH) < RECOMMENDED_CODE_LENGTH:
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {values['code_length']}-digit codes are weak: NIST SP 800-63B "
                    f"asks for at least 20 bits, which is {RECOMMENDED_CODE_LENGTH} digits."
                )
            )
        if options["json"]:
            self.stdout.write(json.dumps({"id": source_id, "created": created}))
        else:
            self.stdout.write(message)

    def create(self, source_id: str, values: dict[str, Any]) -> bool:
        """Create the source; ``False`` if it already is exactly this one, else Refused."""
        wanted = {field: values.get(field, _default(field)) for field in FIELDS}
        existing = AuthSource.objects.filter(pk=source_id).first()
        if existing is None:
            try:
                with transaction.atomic():
                    AuthSource(id=source_id, **wanted).save(force_insert=True)
            except IntegrityError:  # created meanwhile by another process
                existing = AuthSource.objects.get(pk=source_id)
            else:
                return True
        _refuse_channel_change(existing, wanted["channel"])
        differences = [
            f"{FIELDS[field]} {_shown(field, getattr(existing, field))}, not {_shown(field, value)}"
            for field, value in wanted.items()
            if getattr(existing, field) != value
        ]
        if differences:
            raise Refused(
                f"Auth source {source_id!r} already exists with {'; '.join(differences)}: "
                "add --update to change only the options given."
            )
        return False

    def update(self, source_id: str, values: dict[str, Any]) -> tuple[bool, list[str]]:
        """Change the fields given (as ``field old -> new``), or create a new id's source."""
        with transaction.atomic():
            source = AuthSource.objects.select_for_update().filter(pk=source_id).first()
            if source is not None:
                return False, self.change(source, values)
        if "channel" not in values:
            raise UsageError(
                f"No auth source has the id {source_id!r}: creating it needs --channel."
            )
        return self.create(source_id, values), []

    def change(self, source: AuthSource, values: dict[str, Any]) -> list[str]:
        """Set the fields given on ``source`` (locked by the caller); return what changed."""
        if "channel" in values:
            _refuse_channel_change(source, values["channel"])
        changes = {}
        for field, value in values.items():
            old = getattr(source, field)
            if old != value:
                setattr(source, field, value)
                changes[field] = f"{FIELDS[field]} {_shown(field, old)} -> {_shown(field, value)}"
        if changes:
            source.save(update_fields=[*changes, "updated_at"])
        return list(changes.values())


def _refuse_channel_change(source: AuthSource, channel: str) -> None:
    if source.channel != channel:
        raise Refused(
            f"Auth source {source.id!r} sends by {source.channel}; its channel cannot change "
            f"to {channel} (tokens already issued are bound to it): create a new auth "
            "source with another --id instead."
        )
