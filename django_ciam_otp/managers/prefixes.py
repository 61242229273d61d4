"""Blocks of phone-number prefixes (the conversion monitor's) and API clients' last use."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from ..models import BlockedPrefix, OTPClient  # noqa: F401 - named in quotes below


class BlockedPrefixQuerySet(models.QuerySet["BlockedPrefix"]):
    """A prefix is blocked while ``blocked_until`` is ahead; a block ends by moving it to now.

    Rows are kept after a block ends: the admin shows why a prefix was blocked.
    Callers tell ``snapshots.table_changed(BlockedPrefix)`` after :meth:`lift`:
    ``update()`` sends no ``post_save``.
    """

    def block(
        self,
        prefix: str,
        *,
        until: dt.datetime,
        reason: str,
        sends: int,
        verifications: int,
        now: dt.datetime,
    ) -> BlockedPrefix:
        """Block ``prefix`` until ``until`` (a new block, or a renewed one with its new reason)."""
        blocked, _ = self.update_or_create(
            prefix=prefix,
            defaults={
                "blocked_until": until,
                "reason": reason,
                "sends": sends,
                "verifications": verifications,
                "created_at": now,
            },
        )
        return blocked

    def lift(self, prefix: str, now: dt.datetime) -> int:
        """End ``prefix``'s block now, if one is running; how many were."""
        return self.filter(prefix=prefix, blocked_until__gt=now).update(blocked_until=now)


class OTPClientQuerySet(models.QuerySet["OTPClient"]):
    def touch_last_used(self, pk: int, now: dt.datetime) -> None:
        """Record a successful authentication (the caller decides how often: once a minute)."""
        self.filter(pk=pk).update(last_used_at=now)
