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
* **when nothing refused**, in this order: the ``bumps`` are incremented
  (each unless its ``unless`` key exists), the ``marker`` is set (and whether
  it was there is reported), the ``sums`` are read (after the bumps), each
  ``distinct`` member is counted among its sets, added only when it is new and
  there is room under its cap, so a refused member is never counted, and each
  ``budget`` that applies takes a token if it has one. What refuses the send
  after that (a distinct count over its cap, an empty budget) is the caller's
  rule: the store only reports.
* **refunds** hand back the rates and the bumps that were incremented, never a
  budget's token: a send refused after it took one still spent it.
* **settled buckets** (:class:`Buckets`): a sum or a distinct count over a
  sliding window may say which of its keys no send bumps any more, and a
  ``memo`` key to keep their total (their union) under while the window
  stays where it is. A store may read the memo instead of those keys (the
  Redis script does: a send then passes its window's two open buckets and the
  memo, not every hour of a day) or ignore it and read them all (the cache
  store does); both answer the same.
* **a lifetime** (``ttl_of``): the key's remaining lifetime is read, last
  and only when nothing refused (``CountResult.ttl_left``). A store that cannot
  read one (the cache store) answers ``None``: "unknown", never a guess. The
  send reads the outbox's wake-up flag this way (``outbox.flag_lasts_until``).

Keys named by ``unless`` and ``when`` are cache keys like every other key of a
plan (the cache's key function applies to them all); only their existence is
looked at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

#: The caller's phase (client, IP): its hits stay counted whatever comes after it.
CALLER = 1
#: The recipient's phase (recipient, blocked prefix, prefix): handed back when nothing is sent.
RECIPIENT = 2

#: ``CountResult.budgets``: the budget applied and one token was taken.
BUDGET_TAKEN = 1
#: ``CountResult.budgets``: the budget applied and was empty; nothing was taken.
BUDGET_REFUSED = 0
#: ``CountResult.budgets``: the budget's ``when``/``unless`` keys left it out; nothing changed.
BUDGET_NOT_APPLIED = -1


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
    """A plain counter incremented when nothing refused (the conversion monitor's).

    ``unless`` names a key whose existence skips the bump, decided in the same
    step as the count: a send is counted as one "to an unproven prefix" only
    while the prefix's "known" marker is absent, without a read first (another
    round trip, and a race with the marker being set). A skipped bump is not
    in ``CountResult.recipient_keys``, so a refund never takes back what was
    not counted. ``kept`` bumps count attempts, not sends: they are never
    handed back (the site-wide view counts the sends a budget refused too,
    or the attack would look over while it goes on).
    """

    key: str
    ttl: int
    unless: str | None = None
    kept: bool = False


@dataclass(frozen=True)
class Marker:
    """A key set when nothing refused; the result tells whether it was already there."""

    key: str
    ttl: int


@dataclass(frozen=True)
class Buckets:
    """The keys of a sliding window's buckets, oldest first, and which of them are settled.

    The first ``settled`` keys are buckets no send bumps any more (their time
    is over, the clock's slack included), so their total never changes: a
    store may keep it under ``memo`` for ``memo_ttl`` seconds. The memo's name
    names the settled range, so the window moving on names a new memo and
    nothing ever has to be invalidated (``rates.sliding_window``).
    """

    keys: tuple[str, ...]
    settled: int = 0
    memo: str | None = None
    memo_ttl: int = 0

    def __post_init__(self) -> None:
        if self.memo is not None and not (1 <= self.settled <= len(self.keys)):
            raise ValueError(f"a memo needs settled keys: {self.settled} of {len(self.keys)}")
        if self.memo is not None and self.memo_ttl < 1:
            raise ValueError("a memo's ttl must be at least one second")

    @property
    def open(self) -> tuple[str, ...]:
        """The keys read every time: all of them when there is no memo."""
        return self.keys[self.settled :] if self.memo is not None else self.keys

    @property
    def closed(self) -> tuple[str, ...]:
        """The keys a memo stands for (none without one)."""
        return self.keys[: self.settled] if self.memo is not None else ()


@dataclass(frozen=True)
class Sum:
    """The total of plain counters, read after the bumps (a tuple of keys, or ``Buckets``)."""

    name: str
    buckets: Buckets | tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.buckets, Buckets):  # one form from here on
            object.__setattr__(self, "buckets", Buckets(tuple(self.buckets)))

    @property
    def window(self) -> Buckets:
        return cast(Buckets, self.buckets)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.window.keys


@dataclass(frozen=True)
class Distinct:
    """Count ``member`` among the members of the sets ``union`` (``key`` is one of them).

    The count includes ``member``. It is added to ``key`` only if it is in
    none of the sets and they hold fewer than ``cap``: a count above ``cap``
    means "refuse", and the refused member stays out. While the key
    ``unless`` exists the member is neither added nor counted: the count is
    the sets' as they are (the site-wide view counts distinct *unproven*
    prefixes, and a proven one is not).

    Since a member goes only into a set where none of the others holds it,
    the sets are disjoint and the Redis script adds up their sizes (one call
    a set) rather than forming their union. Two web servers a bucket apart in
    time can both add one member (each sees a window the other's set is not
    in); then the sizes count it twice until its sets settle into a memo,
    which holds their union (the cache store always counts the union). With
    ``Buckets``, ``key`` must be an open set: the memo of the settled ones
    would never see what went into it.
    """

    name: str
    member: str
    key: str
    #: The sets, ``key`` last (a tuple of keys, or ``Buckets`` whose settled sets' union
    #: a store may keep under the memo).
    union: Buckets | tuple[str, ...]
    cap: int
    ttl: int
    unless: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.union, Buckets):  # one form from here on
            object.__setattr__(self, "union", Buckets(tuple(self.union)))
        if self.key in self.window.closed:
            # The member would go into a set whose union the memo already holds without it.
            raise ValueError(f"distinct count {self.name}: its set {self.key} is a settled one")

    @property
    def window(self) -> Buckets:
        return cast(Buckets, self.union)


@dataclass(frozen=True)
class Budget:
    """A token bucket shared by every send it applies to: the most they may take, over time.

    A rate's fixed window lets a full limit through at each window's start
    (twice in a moment across the boundary); a bucket holds a ceiling at every
    instant: at most ``capacity`` at once, then ``per_second`` on average, so
    an hour never passes ``capacity + 3600 * per_second``. For a site-wide
    cost ceiling (codes to unproven prefixes while the site is under attack).

    It applies only if ``when`` is ``None`` or that key exists, and ``unless``
    is ``None`` or that key does not exist (the site's "tightened" mode key, a
    prefix's "known" marker); else it reports :data:`BUDGET_NOT_APPLIED` and
    changes nothing. When it applies it is refilled by the time since its last
    use (a new bucket starts full), then takes one token if it holds one
    (:data:`BUDGET_TAKEN`) or takes nothing (:data:`BUDGET_REFUSED`). The clock
    is the Redis server's in ``RedisStore`` (one clock for every web process)
    and ``time.time()`` in ``CacheStore``. ``ttl`` (the state's lifetime, from
    its last use) should be at least ``capacity / per_second``: an idle bucket
    is full by then, so forgetting it changes nothing.
    """

    name: str
    key: str
    capacity: float
    per_second: float
    ttl: int
    when: str | None = None
    unless: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capacity) and self.capacity > 0):
            raise ValueError(f"budget {self.name}: capacity must be a positive number")
        if not (math.isfinite(self.per_second) and self.per_second >= 0):
            raise ValueError(f"budget {self.name}: per_second must be a number >= 0")
        if self.ttl < 1:
            raise ValueError(f"budget {self.name}: ttl must be at least one second")


def refill(
    capacity: float, per_second: float, state: tuple[float, float] | None, now: float
) -> float:
    """A bucket's tokens at ``now`` when its ``(tokens, at)`` was ``state`` (as ``count.lua``).

    A bucket without a state is full; a clock that went back refills nothing.
    """
    if state is None:
        return float(capacity)
    tokens, at = state
    return min(float(capacity), tokens + max(0.0, now - at) * per_second)


@dataclass(frozen=True)
class CountPlan:
    """Everything one send counts and reads, in one atomic step where the store allows it."""

    groups: tuple[LimitGroup, ...] = ()
    bumps: tuple[Bump, ...] = ()
    marker: Marker | None = None
    sums: tuple[Sum, ...] = ()
    distinct: tuple[Distinct, ...] = ()
    budgets: tuple[Budget, ...] = ()
    #: A key whose remaining lifetime the count reads (``CountResult.ttl_left``), so a send
    #: learns how long the outbox's wake-up flag lives without a round trip of its own.
    ttl_of: str | None = None

    def __post_init__(self) -> None:
        phases = [group.phase for group in self.groups]
        if phases != sorted(phases):
            raise ValueError("limit groups must be in phase order")
        names = [group.name for group in self.groups]
        names += [s.name for s in self.sums] + [d.name for d in self.distinct]
        names += [b.name for b in self.budgets]
        if len(set(names)) != len(names):
            raise ValueError(f"names in a count plan must be unique: {names}")

    @property
    def has_rates(self) -> bool:
        return any(group.rates for group in self.groups)

    @property
    def touches_the_cache(self) -> bool:
        """False when only a forced group could decide: no store needs to be asked."""
        return bool(
            self.has_rates
            or self.bumps
            or self.marker
            or self.sums
            or self.distinct
            or self.budgets
            or self.ttl_of
        )


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
    #: Per ``Budget`` name, :data:`BUDGET_TAKEN`, :data:`BUDGET_REFUSED` or
    #: :data:`BUDGET_NOT_APPLIED` (empty when something refused).
    budgets: Mapping[str, int] = field(default_factory=dict)
    #: The counters incremented for the caller's phase (kept unless nothing is consumed).
    caller_keys: tuple[str, ...] = ()
    #: The counters incremented for later phases and the bumps that were incremented
    #: (handed back when nothing is sent).
    recipient_keys: tuple[str, ...] = ()
    #: Milliseconds the plan's ``ttl_of`` key had left when it was read (0: missing, or no
    #: expiry); ``None`` when the store cannot say, the plan asked for none or a limit refused.
    ttl_left: int | None = None


def charged_keys(
    plan: CountPlan, refused: str | None, bumped: Sequence[bool] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys ``plan`` incremented when ``refused`` refused: ``(caller's, recipient's)``.

    Every phase before the refusing one was counted, nothing from it on; the
    bumps only when nothing refused, and of those only the ones ``bumped`` (a
    flag per bump, in plan order: false when its ``unless`` key existed).
    """
    stop = next((g.phase for g in plan.groups if g.name == refused), None)
    caller: list[str] = []
    recipient: list[str] = []
    for group in plan.groups:
        if stop is not None and group.phase >= stop:
            break
        (caller if group.phase == CALLER else recipient).extend(r.key for r in group.rates)
    if refused is None:
        flags = [True] * len(plan.bumps) if bumped is None else list(bumped)
        recipient.extend(
            bump.key for bump, done in zip(plan.bumps, flags, strict=True) if done and not bump.kept
        )
    return tuple(caller), tuple(recipient)
