"""Blocked-prefix transitions: a block renewed in place, lifted once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db

# 16:00 UTC is midnight in the test settings' Asia/Shanghai.
START = dt.datetime(2025, 5, 31, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=25)


# --- blocked prefixes and clients ---------------------------------------------------------


def test_a_block_is_renewed_in_place_and_lifted_once():
    from django_ciam_otp.models import BlockedPrefix

    now = timezone.now()
    later = now + dt.timedelta(hours=1)
    BlockedPrefix.objects.block(
        "861361234", until=later, reason="first", sends=5, verifications=0, now=now
    )
    renewed = BlockedPrefix.objects.block(
        "861361234", until=later, reason="again", sends=9, verifications=1, now=now
    )
    assert BlockedPrefix.objects.count() == 1
    assert (renewed.reason, renewed.sends) == ("again", 9)
    assert BlockedPrefix.objects.lift("861361234", now) == 1
    assert BlockedPrefix.objects.lift("861361234", now) == 0  # over already: nothing to lift
    assert not BlockedPrefix.objects.get(prefix="861361234").is_active
