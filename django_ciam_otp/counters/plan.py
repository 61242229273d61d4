"""What one send counts, declared as data, and what counting it found, as named fields.

The rules (``ratelimits.py``, ``abuse.py``) describe their counters in a
:class:`CountPlan`; a store (``redis.py``, ``cache.py``) executes it and
answers a :class:`CountResult`. No rule talks to the cache itself, so each
rule exists once, whichever store runs it. The plan's semantics, which every
store keeps:

* **limit groups, by phase.** Groups of one phase are looked at in order.
  The first with a full rate (a count already at its limit), or one that
  refuses by itself (``forced``: a blocked prefix), refuses: nothing of that
  phase is counted and no later phase is looked at. Otherwise every rate of
  the phase is counted and the next phase is looked at. So the caller's hits
  (phase :data:`CALLER`) stay counted when the recipient's phase refuses:
  hammering a limited recipient still uses up the caller's allowance.
* **rates, shortest window first.** Once a rate of a group is full, the
  group's longer rates are only looked at, never counted: a burst of refused
  requests must not push the hourly and daily counters up.
* **when nothing refused**: the ``bumps`` are incremented, the ``marker`` is
  set (and whether it was there is reported), the ``sums`` are read (after the
  bumps), and each ``distinct`` member is counted among its sets, added only
  when it is new and there is room under its cap, so a refused member is never
  counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: The caller's phase (client, IP): its hits stay counted whatever comes after it.
CALLER = 1
#: The recipient's phase (recipient, blocked prefix, prefix): handed back when nothing is sent.
RECIPIENT = 2


@dataclass(frozen=True)
class Rate:
    """One counter of a limit group in its current window."""

    limit: int
    #: The window's last second (``rates.window_end``); the key names it.
    window: int
    key: str
    #: The key's lifetime in seconds, set when the counter is created.
    ttl: int


@dataclass(frozen=True)
class LimitGroup:
    """The rates one value is held to (a client, an IP, a recipient, a prefix)."""

    name: str
    value: str
    phase: int
    #: Shortest window first (``rates.rates_for``).
    rates: tuple[Rate, ...] = ()
    #: Refuses by itself, counting nothing (a prefix the conversion monitor blocked).
    forced: bool = False


@dataclass(frozen=True)
class Bump:
    """A plain counter incremented when nothing refused (the conversion monitor's)."""

    key: str
    ttl: int


@dataclass(frozen=True)
class Marker:
    """A key set when nothing refused; the result tells whether it was already there."""

    key: str
    ttl: int


@dataclass(frozen=True)
class Sum:
    """The total of plain counters, read after the bumps."""

    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Distinct:
    """Count ``member`` among the members of the sets ``union`` (``key`` is one of them).

    The count includes ``member``. It is added to ``key`` only if it is in
    none of the sets and they hold fewer than ``cap``: a count above ``cap``
    means "refuse", and the refused member stays out.
    """

    name: str
    member: str
    key: str
    union: tuple[str, ...]
    cap: int
    ttl: int


@dataclass(frozen=True)
class CountPlan:
    """Everything one send counts and reads, in one atomic step where the store allows it."""

    groups: tuple[LimitGroup, ...] = ()
    bumps: tuple[Bump, ...] = ()
    marker: Marker | None = None
    sums: tuple[Sum, ...] = ()
    distinct: tuple[Distinct, ...] = ()

    def __post_init__(self) -> None:
        phases = [group.phase for group in self.groups]
        if phases != sorted(phases):
            raise ValueError("limit groups must be in phase order")
        names = [group.name for group in self.groups]
        names += [s.name for s in self.sums] + [d.name for d in self.distinct]
        if len(set(names)) != len(names):
            raise ValueError(f"names in a count plan must be unique: {names}")

    @property
    def has_rates(self) -> bool:
        return any(group.rates for group in self.groups)

    @property
    def touches_the_cache(self) -> bool:
        """False when only a forced group could decide: no store needs to be asked."""
        return bool(self.has_rates or self.bumps or self.marker or self.sums or self.distinct)


@dataclass(frozen=True)
class CountResult:
    """What a store found and did for one :class:`CountPlan`."""

    #: The name of the group that refused, or ``None``.
    refused: str | None
    #: Per group name, each rate's count: after counting it, or as found when
    #: its phase refused (0 for a group that was not looked at).
    counts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: False only when the marker proves that it was not set (see ``Marker``).
    marker_was_set: bool = True
    #: Per ``Sum`` name, its total (empty when something refused).
    sums: Mapping[str, int] = field(default_factory=dict)
    #: Per ``Distinct`` name, the count with the member (empty when something refused).
    distinct: Mapping[str, int] = field(default_factory=dict)
    #: The counters incremented for the caller's phase (kept unless nothing is consumed).
    caller_keys: tuple[str, ...] = ()
    #: The counters incremented for later phases and the bumps (handed back when nothing is sent).
    recipient_keys: tuple[str, ...] = ()


def charged_keys(plan: CountPlan, refused: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys ``plan`` incremented when ``refused`` refused: ``(caller's, recipient's)``.

    Every phase before the refusing one was counted, nothing from it on; the
    bumps only when nothing refused.
    """
    stop = next((g.phase for g in plan.groups if g.name == refused), None)
    caller: list[str] = []
    recipient: list[str] = []
    for group in plan.groups:
        if stop is not None and group.phase >= stop:
            break
        (caller if group.phase == CALLER else recipient).extend(r.key for r in group.rates)
    if refused is None:
        recipient.extend(bump.key for bump in plan.bumps)
    return tuple(caller), tuple(recipient)
