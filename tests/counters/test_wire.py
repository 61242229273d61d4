"""The Lua script's wire format: the one place that writes its arguments and reads its answer.

A field written in one order and read in another would hand the monitor a
prefix's verifications as its sends; these tests pin both directions to the
plan's names, independent of any server.
"""

from __future__ import annotations

import dataclasses

import pytest

from django_ciam_otp.counters import (
    BUDGET_NOT_APPLIED,
    BUDGET_REFUSED,
    BUDGET_TAKEN,
    CALLER,
    RECIPIENT,
    Buckets,
    Budget,
    Bump,
    CountPlan,
    Distinct,
    LimitGroup,
    Marker,
    Rate,
    Sum,
)
from django_ciam_otp.counters.wire import SET_MEMO, SUM_MEMO, decode, encode

PLAN = CountPlan(
    groups=(
        LimitGroup("client", "7", CALLER, (Rate(100, 60, "k:client:m", 61),)),
        LimitGroup(
            "recipient",
            "r",
            RECIPIENT,
            (Rate(1, 30, "k:r:30", 31), Rate(5, 3600, "k:r:h", 3601)),
        ),
        LimitGroup("blocked", "p", RECIPIENT, (), forced=True),
    ),
    bumps=(Bump("k:bump", 600),),
    marker=Marker("k:marker", 360),
    sums=(Sum("sends", ("k:s1", "k:s2")), Sum("verified", ("k:v1",))),
    distinct=(Distinct("numbers", "member-1", "k:n2", ("k:n1", "k:n2"), 3, 600),),
)


def test_encode_lists_every_key_once_in_plan_order_and_the_members_after_the_spec():
    keys, argv = encode(PLAN)
    assert keys == [
        "k:client:m",
        "k:r:30",
        "k:r:h",
        "k:bump",
        "k:marker",
        "k:s1",
        "k:s2",
        "k:v1",
        "k:n2",
        "k:n1",
        "k:n2",
    ]
    assert argv[1:] == ["member-1"]
    spec = [int(v) for v in argv[0].split()]
    assert spec[:2] == [0, 0]  # no memos, no settled keys sent
    # 3 groups: (phase, rates, forced, then limit/ttl per rate) ...
    assert spec[2:18] == [
        3,
        CALLER,
        1,
        0,
        100,
        61,
        RECIPIENT,
        2,
        0,
        1,
        31,
        5,
        3601,
        RECIPIENT,
        0,
        1,
    ]
    # ... 1 bump (ttl, no "unless"), the marker's ttl, 2 sums (no memo, open keys), 1
    # distinct (ttl, cap, no "unless", no memo, open sets), no budgets.
    assert spec[18:23] == [1, 600, 0, 360, 2]
    assert spec[23:27] == [0, 2, 0, 1]
    assert spec[27:] == [1, 600, 3, 0, 0, 2, 0, 0]  # ..., no budgets, no lifetime to read


def test_decode_reads_a_passing_answer_by_name():
    # refused (none), client, r:30, r:h, marker was set, sends, verified, numbers
    answer = [0, 4, 1, 2, 0, 9, 3, 2]
    result = decode(PLAN, answer)
    assert result.refused is None
    assert result.counts == {"client": (4,), "recipient": (1, 2), "blocked": ()}
    assert result.marker_was_set is False
    assert result.sums == {"sends": 9, "verified": 3}
    assert result.distinct == {"numbers": 2}
    assert "k:client:m" in result.caller_keys
    assert {"k:r:30", "k:r:h", "k:bump"} <= set(result.recipient_keys)


def test_decode_reads_a_refusal_and_charges_only_the_phases_before_it():
    result = decode(PLAN, [2, 4, 1, 0])  # the recipient group refused; its counts as found
    assert result.refused == "recipient"
    assert result.counts["recipient"] == (1, 0)
    assert result.caller_keys == ("k:client:m",)
    assert result.recipient_keys == ()
    assert result.sums == {} and result.distinct == {}


# --- "unless" bumps and budgets ---------------------------------------------------------------

GUARDED = CountPlan(
    groups=(LimitGroup("sms", "r", RECIPIENT, (Rate(5, 60, "k:r:m", 61),)),),
    bumps=(Bump("k:all", 600), Bump("k:unproven", 600, unless="k:known")),
    marker=Marker("k:marker", 360),
    sums=(Sum("mode", ("k:mode",)),),
    distinct=(Distinct("numbers", "member-1", "k:n1", ("k:n1",), 3, 600),),
    budgets=(
        Budget("site", "k:bucket", 2.5, 0.125, 7200, when="k:mode", unless="k:known"),
        Budget("plain", "k:plain", 10, 1e-05, 60),
    ),
)


def test_encode_puts_each_condition_key_right_after_the_key_it_guards():
    keys, argv = encode(GUARDED)
    assert keys == [
        "k:r:m",
        "k:all",
        "k:unproven",
        "k:known",
        "k:marker",
        "k:mode",
        "k:n1",
        "k:n1",
        "k:bucket",
        "k:mode",
        "k:known",
        "k:plain",
    ]
    assert argv[1:] == ["member-1"]
    spec = [float(v) for v in argv[0].split()]
    assert spec[:8] == [0, 0, 1, RECIPIENT, 1, 0, 5, 61]
    # 2 bumps (ttl, has "unless"), marker, 1 sum (no memo, 1 open key), 1 distinct ...
    assert spec[8:19] == [2, 600, 0, 600, 1, 360, 1, 0, 1, 1, 600]
    assert spec[19:23] == [3, 0, 0, 1]  # cap, no "unless" key, no memo, one open set
    # ... 2 budgets (ttl, has "when", has "unless", capacity, refill per second), exactly.
    assert spec[23:] == [
        2,
        7200,
        1,
        1,
        2.5,
        0.125,
        60,
        0,
        0,
        10,
        1e-05,
        0,
    ]  # ..., no lifetime to read


def test_decode_reads_the_bump_flags_and_the_budgets_by_name():
    # refused (none), r:m, unproven bumped?, marker, mode, numbers, site, plain
    result = decode(GUARDED, [0, 1, 0, 1, 0, 2, BUDGET_NOT_APPLIED, BUDGET_TAKEN])
    assert result.marker_was_set is True
    assert result.sums == {"mode": 0}
    assert result.distinct == {"numbers": 2}
    assert result.budgets == {"site": BUDGET_NOT_APPLIED, "plain": BUDGET_TAKEN}
    assert result.recipient_keys == ("k:r:m", "k:all")  # the skipped bump is not handed back
    bumped = decode(GUARDED, [0, 1, 1, 1, 0, 2, BUDGET_REFUSED, BUDGET_REFUSED])
    assert bumped.recipient_keys == ("k:r:m", "k:all", "k:unproven")
    assert bumped.budgets == {"site": BUDGET_REFUSED, "plain": BUDGET_REFUSED}


def test_decode_reads_no_budgets_when_a_group_refused():
    result = decode(GUARDED, [1, 5])
    assert result.refused == "sms"
    assert result.budgets == {} and result.recipient_keys == ()


def test_memos_come_first_with_their_settled_keys_and_their_readers_name_no_key():
    # Two sums share a memo (listed once per reader), a distinct count has its own.
    sums = Buckets(("k:s:1", "k:s:2", "k:s:3", "k:s:4"), 2, "k:s:memo", 120)
    sets = Buckets(("k:f:1", "k:f:2", "k:f:3"), 2, "k:f:memo", 7200)
    plan = CountPlan(
        sums=(Sum("all", sums), Sum("again", sums), Sum("plain", ("k:p",))),
        distinct=(Distinct("fresh", "861", "k:f:3", sets, 10, 600),),
    )
    light, argv = encode(plan)
    assert light == [
        *("k:s:memo", "k:s:memo", "k:f:memo"),
        *("k:s:3", "k:s:4", "k:s:3", "k:s:4", "k:p"),
        *("k:f:3", "k:f:3"),
    ]
    spec = [int(v) for v in argv[0].split()]
    # 3 memos, settled keys not sent; per memo its kind, lifetime and settled keys sent.
    assert spec[:11] == [3, 0, SUM_MEMO, 120, 0, SUM_MEMO, 120, 0, SET_MEMO, 7200, 0]
    full, argv = encode(plan, settled=True)
    assert full[:9] == [
        *("k:s:memo", "k:s:memo", "k:f:memo"),
        *("k:s:1", "k:s:2", "k:s:1", "k:s:2", "k:f:1", "k:f:2"),
    ]
    assert full[9:] == light[3:]
    spec = [int(v) for v in argv[0].split()]
    assert spec[:11] == [3, 1, SUM_MEMO, 120, 2, SUM_MEMO, 120, 2, SET_MEMO, 7200, 2]
    # no groups, no bumps, no marker; 3 sums (memo?, open keys); 1 distinct.
    assert spec[11:] == [0, 0, 0, 3, 1, 2, 1, 2, 0, 1, 1, 600, 10, 0, 1, 1, 0, 0]


# --- a key's lifetime (the outbox's wake-up flag) ------------------------------------------------

TIMED = dataclasses.replace(PLAN, ttl_of="k:wake")


def test_a_lifetime_to_read_is_the_last_key_and_the_specs_last_number():
    keys, argv = encode(TIMED)
    assert keys == [*encode(PLAN)[0], "k:wake"]
    assert argv[0].split()[-1] == "1" and argv[0].rsplit(" ", 1)[0] == encode(PLAN)[1][0][:-2]


@pytest.mark.parametrize(("pttl", "left"), [(1234, 1234), (0, 0), (-2, 0), (-1, 0)])
def test_the_lifetime_is_the_answers_last_number_and_never_negative(pttl, left):
    """PTTL says -2 for a missing key and -1 for one without expiry: nothing to rely on."""
    answer = [0, 4, 1, 2, 0, 9, 3, 2, pttl]
    assert decode(TIMED, answer).ttl_left == left
    assert decode(PLAN, answer[:-1]).ttl_left is None  # not asked: unknown
