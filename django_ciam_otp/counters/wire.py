"""The Lua script's arguments and answer: written here and read here, nowhere else.

``count.lua`` takes a plan as one string of integers and a flat list of keys
(its header describes the layout) and answers a flat list of integers.
:func:`encode` and :func:`decode` are the only Python that knows either
layout, and both walk the plan in the same order, so a new field is added in
three places that sit side by side: here twice and in the script.
"""

from __future__ import annotations

from collections.abc import Sequence

from .plan import CountPlan, CountResult, charged_keys


def encode(plan: CountPlan) -> tuple[list[str], list[str]]:
    """``plan`` as the script's ``KEYS`` and ``ARGV``."""
    keys: list[str] = []
    spec: list[int] = [len(plan.groups)]
    for group in plan.groups:
        spec += [group.phase, len(group.rates), 1 if group.forced else 0]
        for rate in group.rates:
            keys.append(rate.key)
            spec += [rate.limit, rate.ttl]
    spec.append(len(plan.bumps))
    for bump in plan.bumps:
        keys.append(bump.key)
        spec.append(bump.ttl)
    if plan.marker is not None:
        keys.append(plan.marker.key)
    spec.append(plan.marker.ttl if plan.marker is not None else 0)
    spec.append(len(plan.sums))
    for total in plan.sums:
        keys += total.keys
        spec.append(len(total.keys))
    spec.append(len(plan.distinct))
    for count in plan.distinct:
        keys += [count.key, *count.union]
        spec += [count.ttl, count.cap, len(count.union)]
    return keys, [" ".join(map(str, spec)), *(count.member for count in plan.distinct)]


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
    caller, recipient = charged_keys(plan, refused)
    if refused is not None:
        return CountResult(refused, counts, caller_keys=caller, recipient_keys=recipient)
    marker_was_set = bool(values[at])
    at += 1
    sums = {total.name: values[at + i] for i, total in enumerate(plan.sums)}
    at += len(plan.sums)
    distinct = {count.name: values[at + i] for i, count in enumerate(plan.distinct)}
    return CountResult(None, counts, marker_was_set, sums, distinct, caller, recipient)
