"""Token transitions: claimed once for delivery, sent, retried, failed, expired; superseded,
wrong attempts, consumed once, purged; and the recipient throttle's lock-out."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from django_ciam_otp import sql
from django_ciam_otp.managers import CLAIM_FIELDS
from django_ciam_otp.models import (
    DeliveryStatus,
    OTPToken,
    RecipientThrottle,
    TokenStatus,
)

from .conftest import row

pytestmark = pytest.mark.django_db

# 16:00 UTC is midnight in the test settings' Asia/Shanghai.
START = dt.datetime(2025, 5, 31, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=25)


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


def test_a_returned_row_in_any_field_order_builds_the_same_instance(make_token):
    """``RETURNING`` lists its fields in the caller's order; ``Model.from_db`` takes a partial
    row in the model's: the values must land on their own fields either way."""
    token = make_token(language="fr")
    shuffled = ("language", "status", "id", "code_expires_at", "token_hash")
    values = {
        "language": "fr",
        "status": TokenStatus.PENDING,
        "id": token.pk,
        "code_expires_at": token.code_expires_at,
        "token_hash": token.token_hash,
    }
    built = sql.returned_instance("default", OTPToken, shuffled, [values[f] for f in shuffled])
    assert {f: getattr(built, "pk" if f == "id" else f) for f in shuffled} == values


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
