"""Short-lived per-process copies of the small tables that every send reads.

Auth sources and blocked prefixes change a few times a day, yet each send
read both: two SQL round trips per send for rows that were the same a moment
ago. Each process now keeps one copy of each table (the enabled auth sources,
the prefixes blocked right now) for ``LOOKUP_CACHE_SECONDS`` (5 by default).

How stale a copy can be:

* a change saved in this process (admin save or delete, the admin's
  enable/disable and unblock actions, the conversion monitor blocking a
  prefix) drops the copy at once, and again when its transaction commits;
* a change saved in another process (another web server, a worker, a shell)
  is seen within ``LOOKUP_CACHE_SECONDS``;
* reads inside a transaction (``atomic``) neither use nor fill the copy: a
  transaction may see its own uncommitted rows, which must not be shared with
  other requests nor outlive a rollback. (Test suites, which run every test in
  a transaction, therefore always see the table as it is.)

``LOOKUP_CACHE_SECONDS = 0`` reads the tables on every send, as before.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.signals import setting_changed
from django.db import connections, router, transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from .conf import otp_settings
from .models import AuthSource, BlockedPrefix

T = TypeVar("T")


class TableSnapshot(Generic[T]):
    """A value loaded from ``model``'s table, reused by this process for a few seconds."""

    def __init__(self, model: type[Model], load: Callable[[], T]) -> None:
        self.model = model
        self._load = load
        self._lock = threading.Lock()
        self._value: tuple[float, T] | None = None  # (monotonic deadline, value)
        # Bumped by clear(): a load that started before a clear must not store
        # what it read (it may predate the change that caused the clear).
        self._generation = 0

    def get(self) -> T:
        seconds = float(otp_settings.LOOKUP_CACHE_SECONDS)
        if seconds <= 0 or connections[router.db_for_read(self.model)].in_atomic_block:
            return self._load()
        entry = self._value
        now = time.monotonic()
        if entry is not None and now < entry[0]:
            return entry[1]
        generation = self._generation
        value = self._load()
        with self._lock:
            if generation == self._generation:
                self._value = (now + seconds, value)
        return value

    def clear(self, **kwargs: Any) -> None:
        """Forget the copy now (and once more when the current transaction commits)."""
        self._forget()
        using = kwargs.get("using") or router.db_for_write(self.model)
        if connections[using].in_atomic_block:
            # Another thread may reload the old rows before this change commits.
            transaction.on_commit(self._forget, using=using)

    def _forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._value = None


def _load_auth_sources() -> dict[str, AuthSource]:
    return {source.pk: source for source in AuthSource.objects.filter(enabled=True)}


def _load_blocked_prefixes() -> dict[str, dt.datetime]:
    rows = BlockedPrefix.objects.filter(blocked_until__gt=timezone.now()).values_list(
        "prefix", "blocked_until"
    )
    return dict(rows)


#: ``{id: AuthSource}`` of the enabled auth sources (shared: treat them as read-only).
auth_sources: TableSnapshot[dict[str, AuthSource]] = TableSnapshot(AuthSource, _load_auth_sources)
#: ``{prefix: blocked_until}`` of the prefixes blocked when the copy was taken.
blocked_prefixes: TableSnapshot[dict[str, dt.datetime]] = TableSnapshot(
    BlockedPrefix, _load_blocked_prefixes
)


def table_changed(model: type[Model]) -> None:
    """Forget the copies of ``model``'s table: call after a ``QuerySet.update()`` on it.

    Saves and deletes of single rows send signals and need no call.
    """
    for snapshot in (auth_sources, blocked_prefixes):
        if snapshot.model is model:
            snapshot.clear()


def clear_all(**kwargs: Any) -> None:
    """Forget every copy (tests; a setting changed)."""
    auth_sources._forget()
    blocked_prefixes._forget()


for _snapshot in (auth_sources, blocked_prefixes):
    post_save.connect(_snapshot.clear, sender=_snapshot.model, weak=False)
    post_delete.connect(_snapshot.clear, sender=_snapshot.model, weak=False)
setting_changed.connect(clear_all)
