"""Step 2 of a send: the code's rules, from the auth source or the site's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from .. import breaker, snapshots
from ..conf import otp_settings
from ..exceptions import InvalidAuthSource, TemporarilyUnavailable
from ..models import AuthSource

#: Longer ids cannot exist; refused before the look-up.
AUTH_SOURCE_ID_MAX_LENGTH = 64


@dataclass(frozen=True)
class CodePolicy:
    auth_source: AuthSource | None
    code_length: int
    code_validity: int


def code_policy(auth_source_id: str | None, channel: str) -> CodePolicy:
    """The enabled auth source's code length and validity (``InvalidAuthSource`` otherwise)."""
    if auth_source_id is None:
        return CodePolicy(
            None, int(otp_settings.DEFAULT_CODE_LENGTH), int(otp_settings.DEFAULT_CODE_VALIDITY)
        )
    # Cannot be an id (PostgreSQL refuses NUL).
    if len(auth_source_id) > AUTH_SOURCE_ID_MAX_LENGTH or "\x00" in auth_source_id:
        raise InvalidAuthSource("Unknown or disabled auth source.")
    # A per-process copy of the enabled auth sources (see snapshots.py for how stale).
    source = snapshots.auth_sources.get().get(auth_source_id)
    if source is None:
        raise InvalidAuthSource("Unknown or disabled auth source.")
    if source.channel != channel:
        raise InvalidAuthSource(f"This auth source sends codes by {source.get_channel_display()}.")
    return CodePolicy(source, source.code_length, source.code_validity)


def require_channel_up(channel: str) -> None:
    """Refuse while the channel's provider is known down (misconfigured).

    A 200 would promise a code that cannot arrive. Nothing is counted or consumed.
    """
    if breaker.current(channel) is not None:
        raise TemporarilyUnavailable()
