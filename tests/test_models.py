"""The models' state transitions (``django_ciam_otp.managers``), each on its own, on SQLite.

Every move of a token, a quota and a recipient throttle is one QuerySet
method; these tests pin what each moves, from which states only, and that a
second caller of a once-only move gets ``False`` (claim, give-back, verify).
Where a move has a hand-written ``UPDATE … RETURNING`` and the ORM fallback
used on other databases, both are tested. Real concurrency (threads, row
locks) is in ``tests/postgres/test_transitions.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from django_ciam_otp import sql
from django_ciam_otp.exceptions import InsufficientEmailQuota, InsufficientSMSQuota
from django_ciam_otp.managers import CLAIM_FIELDS, EPOCH, current_period_start, rolled_over
from django_ciam_otp.models import (
    DeliveryStatus,
    OTPClient,
    OTPToken,
    Quota,
    QuotaPeriod,
    RecipientThrottle,
    TokenStatus,
    period_start_for,
)

pytestmark = pytest.mark.django_db

# 16:00 UTC is midnight in the test settings' Asia/Shanghai.
START = dt.datetime(2025, 5, 31, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=25)


@pytest.fixture
def client() -> OTPClient:
    return OTPClient.objects.create(name="c", client_id="c")


@pytest.fixture(params=["returning", "orm"])
def path(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways: ``UPDATE … RETURNING`` (PostgreSQL, SQLite) and the ORM (MySQL)."""
    if request.param == "orm":
        monkeypatch.setattr(sql, "update_returning_supported", lambda conn: False)
    return str(request.param)


@pytest.fixture
def make_token(client: OTPClient) -> Callable[..., OTPToken]:
    counter = iter(range(10_000))

    def make(**fields: Any) -> OTPToken:
        now = timezone.now()
        values: dict[str, Any] = {
            "token_hash": f"t{next(counter)}",
            "client": client,
            "channel": "sms",
            "usage": "login",
            "recipient_hash": "r",
            "recipient_masked": "+86 136****5678",
            "code_hash": "h",
            "code_length": 6,
            "code_expires_at": now + dt.timedelta(seconds=60),
            "expires_at": now + dt.timedelta(seconds=300),
            **fields,
        }
        return OTPToken.objects.create(**values)

    return make


def row(token: OTPToken) -> OTPToken:
    return OTPToken.objects.get(pk=token.pk)


# --- the period rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "start"),
    [
        (QuotaPeriod.NONE, EPOCH),
        (QuotaPeriod.DAILY, dt.datetime(2025, 5, 30, 16, 0, tzinfo=dt.UTC)),
        (QuotaPeriod.MONTHLY, dt.datetime(2025, 4, 30, 16, 0, tzinfo=dt.UTC)),
    ],
)
def test_every_form_of_the_period_rule_agrees(client, period, start):
    """Python, the model and SQL say the same about the same row, either side of the start."""
    assert period_start_for(period, START) == start
    for period_start, over in ((start - dt.timedelta(seconds=1), True), (start, False)):
        if period == QuotaPeriod.NONE and over:
            period_start = EPOCH - dt.timedelta(days=1)
        Quota.objects.all().delete()
        quota = Quota.objects.create(
            client=client, channel="sms", limit=9, used=4, period=period, period_start=period_start
        )
        assert quota.has_rolled_over(START) is over
        assert Quota.objects.filter(rolled_over(START)).exists() is over
        annotated = Quota.objects.with_current_used(START).annotate(
            start=current_period_start(START)
        )
        assert annotated.values_list("used_now", "start").get() == (0 if over else 4, start)
        with time_machine.travel(START, tick=False):
            assert quota.current_used == (0 if over else 4)


# --- quotas -------------------------------------------------------------------------------


def test_consume_counts_in_the_clients_and_the_site_quota(client, path):
    Quota.objects.create(client=client, channel="sms", limit=2)
    Quota.objects.create(client=None, channel="sms", limit=5)
    Quota.objects.create(client=None, channel="email", limit=5)
    taken = Quota.objects.consume(client.pk, "sms")
    assert sorted((q.client_id or 0, q.used, q.period_start) for q in taken) == [
        (0, 1, EPOCH),
        (client.pk, 1, EPOCH),
    ]
    assert sorted(Quota.objects.values_list("channel", "used")) == [
        ("email", 0),
        ("sms", 1),
        ("sms", 1),
    ]


def test_consume_refuses_at_the_limit_and_takes_nothing(client, path):
    Quota.objects.create(client=client, channel="sms", limit=1, used=1)
    Quota.objects.create(client=None, channel="sms", limit=5)
    with pytest.raises(InsufficientSMSQuota), transaction.atomic():
        Quota.objects.consume(client.pk, "sms")
    assert sorted(Quota.objects.values_list("used", flat=True)) == [0, 1]


def test_a_zero_limit_refuses_and_the_error_names_the_channel(client, path):
    Quota.objects.create(client=None, channel="email", limit=0)
    with pytest.raises(InsufficientEmailQuota), transaction.atomic():
        Quota.objects.consume(client.pk, "email")


def test_consume_nothing_checks_that_one_more_would_fit(client, path):
    quota = Quota.objects.create(client=client, channel="sms", limit=2, used=1)
    assert [q.used for q in Quota.objects.consume(client.pk, "sms", count=0)] == [1]
    Quota.objects.filter(pk=quota.pk).update(used=2)
    with pytest.raises(InsufficientSMSQuota), transaction.atomic():
        Quota.objects.consume(client.pk, "sms", count=0)
    assert Quota.objects.get().used == 2


def test_no_quota_consumes_nothing(client, path):
    assert Quota.objects.consume(client.pk, "sms") == []


def test_a_rolled_over_quota_starts_again(client, path):
    with time_machine.travel(START, tick=False):
        Quota.objects.create(
            client=client,
            channel="sms",
            limit=3,
            used=3,
            period=QuotaPeriod.DAILY,
            period_start=dt.datetime(2025, 5, 29, 16, 0, tzinfo=dt.UTC),
        )
        [taken] = Quota.objects.consume(client.pk, "sms")
    today = dt.datetime(2025, 5, 30, 16, 0, tzinfo=dt.UTC)
    assert (taken.used, taken.period_start) == (1, today)
    assert Quota.objects.values_list("used", "period_start").get() == (1, today)


def test_give_back_returns_one_message_once(client, make_token):
    Quota.objects.create(client=client, channel="sms", limit=5, used=2)
    Quota.objects.create(client=None, channel="sms", limit=5, used=2)
    token = make_token(quota_consumed=True)
    stale = row(token)  # another process's copy, still saying consumed
    assert Quota.objects.give_back(token) is True
    assert token.quota_consumed is False
    assert Quota.objects.give_back(stale) is False  # the flag was cleared in the database
    assert Quota.objects.give_back(token) is False  # and on the instance: no query
    assert list(Quota.objects.values_list("used", flat=True)) == [1, 1]
    assert row(token).quota_consumed is False


def test_give_back_leaves_a_quota_that_restarted_since_the_send(client, make_token):
    Quota.objects.create(client=client, channel="sms", limit=5, used=1, period_start=START)
    token = make_token(quota_consumed=True, created_at=START - dt.timedelta(hours=1))
    assert Quota.objects.give_back(token) is True
    assert Quota.objects.get().used == 1


def test_an_alarm_level_is_claimed_once_per_period(client):
    quota = Quota.objects.create(client=client, channel="sms", limit=10)
    first, second = START, START + dt.timedelta(days=1)
    assert Quota.objects.claim_alarm(quota.pk, 80, first) is True
    assert Quota.objects.claim_alarm(quota.pk, 80, first) is False
    assert Quota.objects.claim_alarm(quota.pk, 100, first) is True
    assert Quota.objects.claim_alarm(quota.pk, 80, first) is False
    assert Quota.objects.claim_alarm(quota.pk, 80, second) is True


# --- token delivery -----------------------------------------------------------------------


def test_a_token_is_claimed_once_with_what_delivery_needs(make_token):
    token = make_token(quota_consumed=True, language="fr")
    now = timezone.now()
    claimed = OTPToken.objects.claim_for_delivery(token.pk, now=now, lease=LEASE)
    assert claimed is not None
    assert claimed.get_deferred_fields() == {
        f.attname for f in OTPToken._meta.concrete_fields if f.name not in CLAIM_FIELDS
    }
    assert (claimed.pk, claimed.client_id, claimed.quota_consumed, claimed.language) == (
        token.pk,
        token.client_id,
        True,
        "fr",
    )
    assert claimed.code_expires_at == token.code_expires_at  # converted as the ORM reads it
    assert (row(token).delivery_status, row(token).delivery_started_at) == (
        DeliveryStatus.SENDING,
        now,
    )
    assert OTPToken.objects.claim_for_delivery(token.pk, now=now, lease=LEASE) is None
    assert OTPToken.objects.claim_read(token.pk, now=now, lease=LEASE) is False


def test_a_claim_older_than_the_lease_can_be_taken_over(make_token):
    token = make_token()
    now = timezone.now()
    assert OTPToken.objects.claim_read(token.pk, now=now, lease=LEASE) is True
    later = now + LEASE + dt.timedelta(seconds=1)
    assert OTPToken.objects.claim_for_delivery(token.pk, now=later, lease=LEASE) is not None
    assert row(token).delivery_started_at == later


@pytest.mark.parametrize(
    "fields",
    [
        {"status": TokenStatus.SUPERSEDED},
        {"code_expires_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)},
        {"delivery_status": DeliveryStatus.SENT},
    ],
)
def test_an_undeliverable_token_is_not_claimed(make_token, fields):
    token = make_token(**fields)
    assert OTPToken.objects.claim_for_delivery(token.pk, now=timezone.now(), lease=LEASE) is None


def test_without_update_returning_the_claim_is_left_to_the_read_path(make_token, monkeypatch):
    monkeypatch.setattr(sql, "update_returning_supported", lambda conn: False)
    token = make_token()
    assert OTPToken.objects.claim_for_delivery(token.pk, now=timezone.now(), lease=LEASE) is None
    assert row(token).delivery_status == DeliveryStatus.QUEUED


def test_mark_sent_records_the_outcome(make_token, path):
    token = make_token(
        delivery_status=DeliveryStatus.SENDING, delivery_attempts=1, delivery_error="x"
    )
    OTPToken.objects.mark_sent(token.pk, message_id="m" * 200, fee=70000, region="CN-north-1")
    sent = row(token)
    assert (sent.delivery_status, sent.provider_message_id, sent.fee, sent.billed_region) == (
        DeliveryStatus.SENT,
        "m" * 128,
        None,  # out of the column's range: not a figure anyone billed
        "CN-north",
    )
    assert (sent.delivery_attempts, sent.delivery_error, sent.sent_at is not None) == (2, "", True)


def test_a_retry_requeues_only_a_claimed_delivery(make_token):
    token = make_token(delivery_status=DeliveryStatus.SENDING)
    assert OTPToken.objects.requeue_for_retry(token, reason="busy", code="Throttled") is True
    again = row(token)
    assert (again.delivery_status, again.delivery_attempts) == (DeliveryStatus.QUEUED, 1)
    assert (again.delivery_error, again.delivery_error_code) == ("busy", "Throttled")
    assert OTPToken.objects.requeue_for_retry(token, reason="busy", code="Throttled") is False


@pytest.mark.parametrize(
    ("before", "after", "moved"),
    [
        (
            (TokenStatus.PENDING, DeliveryStatus.SENDING),
            (TokenStatus.FAILED, DeliveryStatus.FAILED),
            True,
        ),
        (
            (TokenStatus.SUPERSEDED, DeliveryStatus.QUEUED),
            (TokenStatus.SUPERSEDED, DeliveryStatus.FAILED),
            True,
        ),
        (
            (TokenStatus.PENDING, DeliveryStatus.SENT),
            (TokenStatus.PENDING, DeliveryStatus.SENT),
            False,
        ),
    ],
)
def test_mark_failed_closes_both_fields_in_one_statement(
    make_token, django_assert_num_queries, before, after, moved
):
    token = make_token(status=before[0], delivery_status=before[1])
    with django_assert_num_queries(1):
        assert OTPToken.objects.mark_failed(token.pk, "x" * 300) is moved
    failed = row(token)
    assert (failed.status, failed.delivery_status) == after
    assert failed.delivery_error == ("x" * 200 if moved else "")


def test_expire_unsent_from_any_unfinished_state_or_only_the_one_seen(make_token):
    queued, sending, sent = (
        make_token(delivery_status=s)
        for s in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.SENT)
    )
    assert OTPToken.objects.expire_unsent(queued.pk, "gone") is True
    assert OTPToken.objects.expire_unsent(sent.pk, "gone") is False
    assert OTPToken.objects.expire_unsent(sending.pk, "gone", was=DeliveryStatus.QUEUED) is False
    assert OTPToken.objects.expire_unsent(sending.pk, "gone", was=DeliveryStatus.SENDING) is True
    assert [row(t).delivery_status for t in (queued, sending, sent)] == [
        DeliveryStatus.EXPIRED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.SENT,
    ]


def test_stale_deliveries_are_those_no_worker_will_finish(make_token):
    now = timezone.now()
    past = now - dt.timedelta(seconds=1)
    old_claim = now - LEASE - dt.timedelta(seconds=1)
    stale = [
        make_token(code_expires_at=past),
        make_token(
            code_expires_at=past,
            delivery_status=DeliveryStatus.SENDING,
            delivery_started_at=old_claim,
        ),
    ]
    make_token()  # still valid
    make_token(
        code_expires_at=past, delivery_status=DeliveryStatus.SENDING, delivery_started_at=now
    )
    make_token(code_expires_at=past, delivery_status=DeliveryStatus.SENT)
    found = OTPToken.objects.stale_deliveries(now=now, lease=LEASE)
    assert sorted(t.pk for t in found) == sorted(t.pk for t in stale)


# --- token verification -------------------------------------------------------------------


def test_a_send_supersedes_the_older_pending_tokens_of_its_recipient_and_usage(make_token):
    older = make_token()
    other_usage = make_token(usage="signup")
    other_recipient = make_token(recipient_hash="other")
    verified = make_token(status=TokenStatus.VERIFIED)
    newest = make_token()
    assert OTPToken.objects.supersede_older(newest) == 1
    assert [row(t).status for t in (older, other_usage, other_recipient, verified, newest)] == [
        TokenStatus.SUPERSEDED,
        TokenStatus.PENDING,
        TokenStatus.PENDING,
        TokenStatus.VERIFIED,
        TokenStatus.PENDING,
    ]
    flags = dict(OTPToken.objects.with_newer_flag().values_list("pk", "has_newer"))
    assert (flags[older.pk], flags[other_usage.pk], flags[newest.pk]) == (True, False, False)


def test_wrong_codes_count_and_lock_at_the_last_attempt(make_token):
    token = make_token()
    assert OTPToken.objects.count_wrong_attempt(token.pk, max_attempts=2) is True
    assert row(token).status == TokenStatus.PENDING
    assert OTPToken.objects.count_wrong_attempt(token.pk, max_attempts=2) is True
    assert (row(token).status, row(token).attempts) == (TokenStatus.LOCKED, 2)
    assert OTPToken.objects.count_wrong_attempt(token.pk, max_attempts=2) is False
    assert row(token).attempts == 2


def test_a_correct_code_is_consumed_once(make_token):
    token, spent = make_token(), make_token(attempts=3)
    now = timezone.now()
    assert OTPToken.objects.mark_verified(token.pk, now=now, max_attempts=3) is True
    assert (row(token).status, row(token).verified_at) == (TokenStatus.VERIFIED, now)
    assert OTPToken.objects.mark_verified(token.pk, now=now, max_attempts=3) is False
    assert OTPToken.objects.mark_verified(spent.pk, now=now, max_attempts=3) is False


def test_purge_deletes_tokens_expired_longer_ago_than_asked(make_token):
    now = timezone.now()
    old = make_token(expires_at=now - dt.timedelta(hours=2))
    recent = make_token(expires_at=now - dt.timedelta(minutes=1))
    make_token()
    assert OTPToken.objects.purge_expired(older_than=dt.timedelta(hours=1)) == 1
    assert not OTPToken.objects.filter(pk=old.pk).exists()
    assert OTPToken.objects.purge_expired() == 1
    assert not OTPToken.objects.filter(pk=recent.pk).exists()
    assert OTPToken.objects.count() == 1


# --- recipient throttle -------------------------------------------------------------------


def test_a_recipient_is_locked_out_at_the_failure_cap_and_counts_anew():
    now = timezone.now()
    lockout = dt.timedelta(minutes=15)
    for _ in range(2):
        RecipientThrottle.objects.count_failure("r", now=now, max_failures=3, lockout=lockout)
    assert not RecipientThrottle.objects.is_locked("r", now)
    RecipientThrottle.objects.count_failure("r", now=now, max_failures=3, lockout=lockout)
    assert RecipientThrottle.objects.values_list("failures", "locked_until").get() == (
        0,
        now + lockout,
    )
    assert RecipientThrottle.objects.is_locked("r", now)
    assert not RecipientThrottle.objects.is_locked("r", now + lockout)
    assert not RecipientThrottle.objects.is_locked("other", now)


def test_a_verified_code_forgives_the_recipients_failures():
    now = timezone.now()
    RecipientThrottle.objects.create(recipient_hash="r", failures=2, locked_until=now)
    RecipientThrottle.objects.reset("r")
    assert RecipientThrottle.objects.values_list("failures", "locked_until").get() == (0, None)


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
