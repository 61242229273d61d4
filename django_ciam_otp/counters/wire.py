"""The Lua script's arguments and answer: written here and read here, nowhere else.

``count.lua`` takes a plan as one string of numbers and a flat list of keys
(its header describes the layout) and answers a flat list of integers.
:func:`encode` and :func:`decode` are the only Python that knows either
layout, and both walk the plan in the same order, so a new field is added in
three places that sit side by side: here twice and in the script.
"""

from __future__ import annotations

from collections.abc import Sequence

from .plan import Buckets, CountPlan, CountResult, charged_keys

#: The script's whole answer when a memo is missing and the settled keys were not sent:
#: nothing was counted; send the plan again with them (``encode(plan, settled=True)``).
SETTLED_NEEDED = -1


def encode(plan: CountPlan, *, settled: bool = False) -> tuple[list[str], list[str]]:
    """``plan`` as the script's ``KEYS`` and ``ARGV``.

    ``settled``: also send the keys the memos stand for, so that a missing memo
    is made; without them the script refuses to run when one is missing
    (:data:`SETTLED_NEEDED`), which happens once per memo as a window moves on.
    The memos are made before any limit is looked at, so a refused send makes
    them too, and the next one needs a single round trip.
    """
    memos = _memos(plan)
    keys: list[str] = [window.memo for window, _ in memos if window.memo is not None]
    spec: list[int | float] = [len(memos), 1 if settled else 0]
    for window, kind in memos:
        sent = window.closed if settled else ()
        keys += sent
        spec += [kind, window.memo_ttl, len(sent)]
    spec.append(len(plan.groups))
    for group in plan.groups:
        spec += [group.phase, len(group.rates), 1 if group.forced else 0]
        for rate in group.rates:
            keys.append(rate.key)
            spec += [rate.limit, rate.ttl]
    spec.append(len(plan.bumps))
    for bump in plan.bumps:
        keys.append(bump.key)
        spec += [bump.ttl, _flag(bump.unless, keys)]
    if plan.marker is not None:
        keys.append(plan.marker.key)
    spec.append(plan.marker.ttl if plan.marker is not None else 0)
    spec.append(len(plan.sums))
    for total in plan.sums:
        spec += _window(total.window, keys)
    spec.append(len(plan.distinct))
    for count in plan.distinct:
        keys.append(count.key)
        spec += [count.ttl, count.cap, _flag(count.unless, keys)]
        spec += _window(count.window, keys)
    spec.append(len(plan.budgets))
    for budget in plan.budgets:
        keys.append(budget.key)
        spec += [budget.ttl, _flag(budget.when, keys), _flag(budget.unless, keys)]
        spec += [float(budget.capacity), float(budget.per_second)]
    spec.append(_flag(plan.ttl_of, keys))
    return keys, [" ".join(map(repr, spec)), *(count.member for count in plan.distinct)]


#: A memo's kind in the script's header: the total of counters, or the union of sets.
SUM_MEMO, SET_MEMO = 1, 2


def _memos(plan: CountPlan) -> list[tuple[Buckets, int]]:
    """The windows with a memo, sums' then distinct counts': the order the script takes them."""
    windows = [(t.window, SUM_MEMO) for t in plan.sums]
    windows += [(c.window, SET_MEMO) for c in plan.distinct]
    return [(window, kind) for window, kind in windows if window.memo is not None]


def _window(window: Buckets, keys: list[str]) -> list[int]:
    """A window's spec (1 if it reads a memo, its open keys); its open keys onto ``keys``."""
    keys += window.open
    return [1 if window.memo is not None else 0, len(window.open)]


def needs_settled(answer: Sequence[int]) -> bool:
    """Whether ``answer`` says: a memo is missing, send the settled keys (nothing was counted)."""
    return len(answer) == 1 and int(answer[0]) == SETTLED_NEEDED


def _flag(key: str | None, keys: list[str]) -> int:
    """1 and ``key`` appended to ``keys`` when there is one, else 0."""
    if key is None:
        return 0
    keys.append(key)
    return 1


def decode(plan: CountPlan, answer: Sequence[int]) -> CountResult:
    """The script's ``answer`` to ``plan`` as a :class:`CountResult`."""
    values = [int(v) for v in answer]
    position = values[0]
    refused = plan.groups[position - 1].name if position else None
    at = 1
    counts: dict[str, tuple[int, ...]] = {}
    for group in plan.groups:
        counts[group.name] = tuple(values[at : at + len(group.rates)])
        at += len(group.rates)
    if refused is not None:
        caller, recipient = charged_keys(plan, refused)
        return CountResult(refused, counts, caller_keys=caller, recipient_keys=recipient)
    bumped: list[bool] = []
    for bump in plan.bumps:  # a flag only for a bump with ``unless``
        bumped.append(True if bump.unless is None else bool(values[at]))
        at += bump.unless is not None
    caller, recipient = charged_keys(plan, None, bumped)
    marker_was_set = bool(values[at])
    at += 1
    sums = {total.name: values[at + i] for i, total in enumerate(plan.sums)}
    at += len(plan.sums)
    distinct = {count.name: values[at + i] for i, count in enumerate(plan.distinct)}
    at += len(plan.distinct)
    budgets = {budget.name: values[at + i] for i, budget in enumerate(plan.budgets)}
    at += len(plan.budgets)
    # PTTL: -2 for a missing key, -1 for one without expiry; neither is a lifetime to rely on.
    ttl_left = max(0, values[at]) if plan.ttl_of is not None else None
    return CountResult(
        None,
        counts,
        marker_was_set,
        sums,
        distinct,
        budgets=budgets,
        caller_keys=caller,
        recipient_keys=recipient,
        ttl_left=ttl_left,
    )
