"""What the scripting-contract commands share (SPEC.md section 6): exit statuses, errors, checks.

Deploy scripts branch on the exit status, so each status means one thing:

* ``0``: done, or already so (an identical re-run of ``create_auth_source``);
* ``2``: usage error, a missing option or a bad value; nothing was written;
* ``1``: refused, the values are fine but the database forbids the operation
  (the id is taken, a source's channel would change).

Every error is one line on stderr, ``UsageError: ...`` or ``Refused: ...``:
no traceback (``--traceback`` shows one) and no usage block (``--help`` shows it).
Values are checked in :meth:`ScriptCommand.execute`, before the system checks
and before any query, on both paths: ``manage.py`` (where argparse converted
nothing but choices) and ``call_command(..., option=value)`` (where Django hands
keyword values to the command without passing them through argparse at all).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

EXIT_REFUSED = 1
EXIT_USAGE = 2

#: Client ids: RFC 3986 "unreserved" characters, so an id reads the same whether
#: or not a caller URL-encodes it in HTTP Basic (RFC 6749 section 2.3.1): no
#: space, ``:``, ``+`` or ``%`` to get wrong. 64 like auth source ids.
CLIENT_ID_MAX_LENGTH = 64
CLIENT_ID_RULE = f"1 to {CLIENT_ID_MAX_LENGTH} characters from A-Z a-z 0-9 - . _ ~"
_CLIENT_ID = re.compile(rf"[A-Za-z0-9._~-]{{1,{CLIENT_ID_MAX_LENGTH}}}")

#: Client secrets typed by a person: long, varied, no stretch used twice. A
#: floor against accidents ("short", "aaaa…", "passwordpassword…1"), not an
#: entropy meter: the generated secret (256 random bits) is the one to use.
#: Random hex of 32 characters (128 bits) passes all but about once in ten
#: million draws (fewer than 8 different digits, or a repeated run of 8).
CLIENT_SECRET_MIN_LENGTH = 32
CLIENT_SECRET_MIN_DISTINCT = 8
CLIENT_SECRET_RUN = 8
#: It travels in an HTTP header; servers refuse headers past a few kilobytes.
CLIENT_SECRET_MAX_LENGTH = 1024
CLIENT_SECRET_RULE = (
    f"{CLIENT_SECRET_MIN_LENGTH} to {CLIENT_SECRET_MAX_LENGTH} characters, at least "
    f"{CLIENT_SECRET_MIN_DISTINCT} of them different, and no {CLIENT_SECRET_RUN} characters "
    "in a row used twice"
)

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


class UsageError(CommandError):
    """A missing option or a bad value: exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message), returncode=EXIT_USAGE)


class Refused(CommandError):
    """Well-formed, but the database's state forbids it: exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message), returncode=EXIT_REFUSED)


def one_line(message: str) -> str:
    return " ".join(message.split())


class ScriptParser(CommandParser):
    """Django's parser, but a parse error is one line and exit status 2 on both paths.

    argparse prints the whole usage block before the error; Django's parser,
    called from ``call_command``, raises ``CommandError`` with exit status 1.
    """

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(EXIT_USAGE, f"UsageError: {one_line(message)} (see {self.prog} --help)\n")
        raise UsageError(message)


class ScriptCommand(BaseCommand):
    """A command of the scripting contract: its values checked first, its errors one line."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds the parser itself and has no hook for its class; ours
        # only overrides error(), so switching the instance's class is enough.
        parser.__class__ = ScriptParser
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        return super().execute(*args, **self.clean_options(options))

    def clean_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Return ``options`` with each value checked and converted; raise :class:`UsageError`."""
        return options


# --- value checks: each raises UsageError naming the option ------------------------------


def whole_number(value: Any, option: str, *, minimum: int, maximum: int, unit: str) -> int:
    """``value`` (text from the command line, an int from ``call_command``) within bounds."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        number = int(value)
    else:
        raise UsageError(f"{option} must be a whole number of {unit}, got {value!r}.")
    if not minimum <= number <= maximum:
        raise UsageError(f"{option} must be {minimum} to {maximum} {unit}, got {number}.")
    return number


def choice(value: Any, option: str, choices: list[str]) -> str:
    if value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, got {value!r}.")
    return str(value)


def model_value(model: type[models.Model], field_name: str, value: Any, option: str) -> Any:
    """``value`` as the model field accepts it (blank, length, validators), else UsageError."""
    try:
        return model_field(model, field_name).clean(value, None)
    except ValidationError as exc:
        raise UsageError(f"{option} {value!r}: {' '.join(exc.messages)}") from exc


def model_field(model: type[models.Model], field_name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(field_name)
    assert isinstance(field, models.Field)  # a concrete field, not a reverse relation
    return field


def client_id(value: Any) -> str:
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise UsageError(f"--client-id must be {CLIENT_ID_RULE}, got {value!r}.")
    return value


def client_secret(value: Any) -> str:
    """A secret a person chose, held to :data:`CLIENT_SECRET_RULE`; never echoed back."""
    if not isinstance(value, str):
        raise UsageError("--client-secret must be text.")
    length = len(value)
    if not CLIENT_SECRET_MIN_LENGTH <= length <= CLIENT_SECRET_MAX_LENGTH:
        problem = f"it has {length}"
    elif len(set(value)) < CLIENT_SECRET_MIN_DISTINCT:
        problem = f"it has only {len(set(value))} different characters"
    elif _repeats_a_run(value, CLIENT_SECRET_RUN):
        problem = f"it uses {CLIENT_SECRET_RUN} characters in a row twice"
    else:
        return value
    raise UsageError(
        f"--client-secret must be {CLIENT_SECRET_RULE}: {problem}. "
        "Leave it out to get a generated one (256 random bits)."
    )


def _repeats_a_run(value: str, length: int) -> bool:
    """Whether some ``length`` consecutive characters occur twice (overlapping counts)."""
    seen: set[str] = set()
    for start in range(len(value) - length + 1):
        run = value[start : start + length]
        if run in seen:
            return True
        seen.add(run)
    return False
