"""The interface every counter store keeps, so rules never depend on which cache runs them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .plan import CountPlan, CountResult


class CacheUnavailable(Exception):
    """The counter cache did not answer (or this process left it alone: see ``store``)."""


class CounterStore(Protocol):
    """Counts a :class:`CountPlan` and the few plain operations the monitor needs.

    Stores raise whatever their client raises when the cache is down; the
    module-level functions of ``counters.store`` turn that into
    :class:`CacheUnavailable` and the per-process breaker, once for all stores.
    """

    def count(self, plan: CountPlan) -> CountResult:
        """Execute ``plan`` (atomically where the store can) and report what it found."""
        ...

    def refund(self, keys: Sequence[str]) -> None:
        """Decrement ``keys`` that still exist: an expired counter must not come back as -1."""
        ...

    def budget_left(self, key: str, capacity: float, per_second: float) -> float:
        """The tokens the ``Budget`` at ``key`` holds now (refilled, none taken; full if new)."""
        ...

    def add(self, key: str, value: Any, ttl: int | None) -> bool:
        """Set ``key`` only if it is absent; whether it was set."""
        ...

    def bump(self, key: str, ttl: int) -> None:
        """Increment the plain counter ``key``, creating it with ``ttl`` when absent."""
        ...

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Any]: ...

    def set(self, key: str, value: Any, ttl: int | None) -> None: ...

    def delete_many(self, keys: Sequence[str]) -> None: ...

    def touch(self, key: str, ttl: int | None) -> bool:
        """Give ``key`` a new lifetime; whether it existed."""
        ...

    def hand_over(self, key: str, value: str, ms: int) -> bool:
        """Set ``key`` to ``value`` for ``ms`` milliseconds; whether the caller must wait them out.

        The end of a run of the outbox's batch task (``outbox.let_go_of_wake``): sends may
        rely on the flag for as long as a count read it would live. A store whose counts read
        no lifetime (``CountResult.ttl_left`` is ``None``) has no such sends: it deletes
        ``key`` and answers ``False``.
        """
        ...
