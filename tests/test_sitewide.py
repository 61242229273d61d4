"""The site-wide view of SMS pumping (``sitewide.py``): the signals, the mode, the budget.

A bot spread over many fresh blocks, a few numbers each, passes every
per-prefix rule; the site as a whole sees its sends to unproven prefixes surge
and its conversion fall. These tests drive the view through real sends on the
fast suite's local-memory cache (the same ``CountPlan`` runs on Redis in
``tests/integration/test_sitewide_redis.py``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.core import mail

from django_ciam_otp import abuse, crypto, send_otp, signals, sitewide, verify_otp
from django_ciam_otp.counters import store
from django_ciam_otp.exceptions import RateLimitExceeded
from django_ciam_otp.sitewide import Signals, read_signals

pytestmark = pytest.mark.django_db

MONITOR = {
    "ENABLED": True,
    "WINDOW": 3600,
    "MIN_SENDS": 1000,  # the per-prefix ratio rule stays out of these tests
    "MIN_RATIO": 0.2,
    "COOLDOWN": 3600,
    "NEW_PREFIX_NUMBERS": 3,
    "PREFIX_MEMORY": 30 * 86400,
    "ATTACK_BLOCKS": 0,  # only the site-wide view tightens here
    "ATTACK_RANGE_LENGTH": 11,
    "ATTACK_RANGE_NUMBERS": 1,
    "SITE_WINDOW": 600,
    "SITE_HISTORY": 86400,
    "SITE_HISTORY_MIN_SENDS": 500,
    "SITE_MIN_UNPROVEN": 5,
    "UNPROVEN_SHARE_FLOOR": 0.2,
    "UNPROVEN_SURGE": 2.0,
    "SITE_MIN_SENDS": 40,
    "NEW_SITE_RATIO": 0.6,
    "CONVERSION_DROP": 0.5,
    "TIGHTENED_MIN_SECONDS": 900,
    "UNPROVEN_CODES_PER_HOUR": 12,  # a burst of 2, then 10 an hour
}


def configure(settings: Any, client_id: str) -> None:
    """Only the site-wide view judges (no other limit), for the site's own client."""
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": [],
        "PREFIX_RATE_LIMITS": [],
        "IP_RATE_LIMITS": [],
        "CLIENT_RATE_LIMITS": [],
        "CONVERSION_MONITOR": MONITOR,
        "SITE_CLIENT_ID": client_id,
    }


@pytest.fixture
def site(settings, api_client):
    configure(settings, api_client.client.client_id)


def fresh_blocks() -> Iterator[str]:
    """One number in each of many blocks nobody verified in: the sparse bot's walk."""
    for n in itertools.count():
        yield f"135{n:04d}0000"


def proven(block_number: str) -> None:
    abuse.vouch_prefix(abuse.phone_prefix("+86" + block_number))


def send(phone: str) -> int:
    try:
        send_otp(usage="signup", phone_number=phone)
    except RateLimitExceeded:
        return 429
    return 200


# --- the signals, on their own -----------------------------------------------------------------


def judged(**given: int) -> Signals:
    """The signals of a count with these sums; ``unproven``: distinct unproven prefixes."""
    sums = dict.fromkeys(
        [
            sitewide.SHORT_SENDS,
            sitewide.SHORT_ALL_SENDS,
            sitewide.SHORT_VERIFIED,
            sitewide.LONG_SENDS,
            sitewide.LONG_VERIFIED,
        ],
        0,
    )
    distinct = {sitewide.SHORT_FRESH: 0, sitewide.LONG_FRESH: 0}
    names = {
        "short": (sums, sitewide.SHORT_ALL_SENDS),
        "settled": (sums, sitewide.SHORT_SENDS),
        "verified": (sums, sitewide.SHORT_VERIFIED),
        "unproven": (distinct, sitewide.SHORT_FRESH),
        "long": (sums, sitewide.LONG_SENDS),
        "long_verified": (sums, sitewide.LONG_VERIFIED),
        "long_unproven": (distinct, sitewide.LONG_FRESH),
    }
    for name, value in given.items():
        target, key = names[name]
        target[key] = value
    return read_signals(sums, distinct)


def test_a_site_without_history_is_judged_against_the_floors(site):
    calm = judged(short=100, unproven=10, settled=80, verified=60)
    assert not calm.out_of_band
    surge = judged(short=100, unproven=30, settled=80, verified=60)
    assert surge.surge and not surge.drop
    drop = judged(short=100, unproven=10, settled=80, verified=20)
    assert drop.drop and not drop.surge


def test_with_history_the_band_is_the_sites_own(site):
    # A site where half the sends go to unproven prefixes (a young site): 50 % is normal...
    young = dict(long=1000, long_unproven=500, long_verified=800)
    assert not judged(short=100, unproven=50, settled=80, verified=60, **young).surge
    # ... and only twice its share would be a surge, which a share cannot reach.
    assert not judged(short=100, unproven=99, settled=80, verified=60, **young).surge
    # A site with 15 % unproven surges above 30 %; a mature one (5 %) above the floor, 20 %.
    usual = dict(long=1000, long_unproven=150, long_verified=850)
    assert not judged(short=100, unproven=29, settled=80, verified=70, **usual).surge
    assert judged(short=100, unproven=31, settled=80, verified=70, **usual).surge
    mature = dict(long=1000, long_unproven=50, long_verified=850)
    assert not judged(short=100, unproven=15, settled=80, verified=70, **mature).surge
    assert judged(short=100, unproven=21, settled=80, verified=70, **mature).surge


def test_too_few_sends_are_no_signal(site):
    quiet = judged(short=4, unproven=4, settled=4, verified=0)
    assert quiet == Signals(4, 4, 0, 4, 0, 0, 0, surge=False, drop=False)


def test_the_ceiling_holds_any_hour_to_its_figure():
    bucket = sitewide.Ceiling(60)
    assert bucket.capacity + bucket.per_second * 3600 == pytest.approx(60)
    assert bucket.wait() == 72  # 50 an hour after the burst of 10


# --- the mode, through sends ---------------------------------------------------------------------


def test_a_sparse_bot_tightens_the_site_and_the_budget_holds_it_to_the_ceiling(site):
    changes = []
    signals.pumping_mode_changed.connect(
        lambda **kw: changes.append(kw["tightened"]), weak=False, dispatch_uid="t"
    )
    try:
        walk = fresh_blocks()
        answers = [send(next(walk)) for _ in range(30)]
    finally:
        signals.pumping_mode_changed.disconnect(dispatch_uid="t")
    # 5 unproven sends tighten the site (SITE_MIN_UNPROVEN); then a burst of 2 from the budget.
    assert answers[:5] == [200] * 5
    assert answers[5:7] == [200, 200]
    assert answers[7:] == [429] * 23
    assert changes == [True]
    assert [m.subject for m in mail.outbox] == ["[Django] SMS pumping: tightened mode"]
    assert sitewide.status().tightened_since is not None


def test_a_bot_hammering_a_few_blocks_does_not_tighten_the_site(site, settings):
    """The per-prefix rules stop it; the site-wide view counts its prefixes, not its sends."""
    # No per-prefix cap here, so every send of the bot is counted.
    monitor = {**MONITOR, "NEW_PREFIX_NUMBERS": 0}
    settings.CIAM_OTP = {**settings.CIAM_OTP, "CONVERSION_MONITOR": monitor}
    for block in ("1351111", "1352222", "1353333"):
        assert [send(f"{block}{n:04d}") for n in range(10)] == [200] * 10
    assert not sitewide.tightened_here()


def test_people_in_proven_blocks_are_untouched_while_tightened(site):
    walk = fresh_blocks()
    for _ in range(10):
        send(next(walk))
    assert sitewide.tightened_here()
    people = [f"139{n:04d}5678" for n in range(20)]
    for phone in people:
        proven(phone)
    assert [send(phone) for phone in people] == [200] * 20


def test_a_verified_code_proves_its_block_again(site):
    walk = fresh_blocks()
    for _ in range(10):
        send(next(walk))
    phone = next(walk)
    refused = send(phone)
    assert refused == 429
    proven(phone)
    assert send(phone) == 200


def test_the_mode_ends_after_the_hold_once_back_in_band(site):
    walk = fresh_blocks()
    for _ in range(8):
        send(next(walk))
    assert sitewide.tightened_here()
    people = [f"139{n:04d}5678" for n in range(3)]
    # An hour later the short window is empty again and the hold is over.
    with time_machine.travel(time.time() + 3600, tick=False):
        for phone in people:
            proven(phone)
            assert send(phone) == 200
    assert not sitewide.tightened_here()
    assert [m.subject for m in mail.outbox][-1] == "[Django] SMS pumping: normal mode"


def test_a_verified_sms_code_counts_in_the_sites_conversion(site, monkeypatch):
    monkeypatch.setattr(crypto, "new_code", lambda length: "123456")
    phone = "+8613912345678"
    sent = send_otp(usage="signup", phone_number=phone)
    verify_otp(None, sent.otp_token, "123456", phone_number=phone, usage="signup")
    now = time.time()
    verified = store.get_many(
        [sitewide._short("v", now).keys[-1], sitewide._long("v", now).keys[-1]]
    )
    assert list(verified.values()) == [1, 1]
    assert sitewide.status().unproven_by_hour[-1] == 1  # the send: its block was unproven


def test_off_with_a_zero_window(settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "CONVERSION_MONITOR": {**MONITOR, "SITE_WINDOW": 0},
    }
    assert sitewide.watch("861361234", "ciam_otp:conv:prefix:861361234:known") == (
        sitewide.SiteWatch()
    )
