"""``OTPToken.objects.record_receipt``: a delivery receipt moves a sent token, once.

sent → delivered, or sent → undelivered (a pending token → failed, as for a
failed delivery; a token already verified, superseded or locked keeps its
status). The token is found by the backend's name *and* the provider's message
id; a second receipt, or one for a token not sent, moves nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from django_ciam_otp.models import DeliveryStatus, OTPToken, TokenStatus

from .conftest import row

pytestmark = pytest.mark.django_db


def receipt(
    message_id: str = "m-1", *, backend: str = "acme", delivered: bool = True, status: str = "OK"
) -> tuple[str, OTPToken | None]:
    return OTPToken.objects.record_receipt(
        backend=backend,
        message_id=message_id,
        delivered=delivered,
        status=status,
        now=timezone.now(),
    )


@pytest.fixture
def sent_token(make_token):
    def make(message_id: str = "m-1", backend: str = "acme", **fields):
        return make_token(
            delivery_status=DeliveryStatus.SENT,
            provider_message_id=message_id,
            delivery_backend=backend,
            sent_at=timezone.now(),
            **fields,
        )

    return make


def test_a_delivered_receipt_moves_sent_to_delivered(sent_token):
    token = sent_token()
    now = timezone.now()
    outcome, found = OTPToken.objects.record_receipt(
        backend="acme", message_id="m-1", delivered=True, status="DELIVRD", now=now
    )
    assert outcome == "delivered"
    assert found is not None and found.pk == token.pk
    assert (found.delivery_status, found.receipt_at) == (DeliveryStatus.DELIVERED, now)
    stored = row(token)
    assert (stored.delivery_status, stored.receipt_at, stored.status) == (
        DeliveryStatus.DELIVERED,
        now,
        TokenStatus.PENDING,
    )
    assert stored.delivery_error == ""


def test_an_undelivered_receipt_fails_a_pending_token(sent_token):
    token = sent_token(quota_consumed=True)
    outcome, found = receipt(delivered=False, status="30003")
    assert outcome == "undelivered"
    assert found is not None and found.quota_consumed  # the caller gives the quota back
    stored = row(token)
    assert (stored.delivery_status, stored.status) == (
        DeliveryStatus.UNDELIVERED,
        TokenStatus.FAILED,
    )
    assert stored.delivery_error == "undelivered: 30003"


def test_a_long_provider_status_is_cut_to_the_column(sent_token):
    token = sent_token()
    receipt(delivered=False, status="x" * 500)
    assert len(row(token).delivery_error) == 200


@pytest.mark.parametrize(
    "status", [TokenStatus.VERIFIED, TokenStatus.SUPERSEDED, TokenStatus.LOCKED]
)
def test_an_undelivered_receipt_leaves_a_finished_token_its_status(sent_token, status):
    token = sent_token(status=status)
    assert receipt(delivered=False)[0] == "undelivered"
    assert (row(token).status, row(token).delivery_status) == (
        status,
        DeliveryStatus.UNDELIVERED,
    )


@pytest.mark.parametrize(("first", "then"), [(True, True), (False, False), (True, False)])
def test_a_second_receipt_is_repeated_and_moves_nothing(sent_token, first, then):
    token = sent_token()
    receipt(delivered=first, status="first")
    before = row(token)
    later = timezone.now() + dt.timedelta(minutes=5)
    outcome, found = OTPToken.objects.record_receipt(
        backend="acme", message_id="m-1", delivered=then, status="then", now=later
    )
    assert outcome == "repeated"
    assert found is not None and found.pk == token.pk
    after = row(token)
    assert (after.delivery_status, after.status, after.receipt_at, after.delivery_error) == (
        before.delivery_status,
        before.status,
        before.receipt_at,
        before.delivery_error,
    )


def test_an_undelivered_receipt_never_overrides_delivered(sent_token):
    token = sent_token()
    receipt(delivered=True)
    assert receipt(delivered=False)[0] == "repeated"
    assert (row(token).delivery_status, row(token).status) == (
        DeliveryStatus.DELIVERED,
        TokenStatus.PENDING,
    )


@pytest.mark.parametrize(
    "delivery", [DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.FAILED]
)
def test_a_token_not_sent_is_not_moved(sent_token, delivery):
    token = sent_token()
    OTPToken.objects.filter(pk=token.pk).update(delivery_status=delivery)
    assert receipt()[0] != "delivered"
    assert row(token).delivery_status == delivery


@pytest.mark.parametrize(
    ("backend", "message_id"), [("other", "m-1"), ("acme", "m-2"), ("", "m-1"), ("ACME", "m-1")]
)
def test_the_token_is_found_by_backend_and_message_id(sent_token, backend, message_id):
    token = sent_token()
    assert receipt(message_id, backend=backend) == ("unknown", None)
    assert row(token).delivery_status == DeliveryStatus.SENT


def test_the_same_message_id_of_two_backends_is_two_messages(sent_token):
    acme = sent_token("m-1", "acme")
    other = sent_token("m-1", "other")
    assert receipt("m-1", backend="other", delivered=False)[1].pk == other.pk
    assert row(other).delivery_status == DeliveryStatus.UNDELIVERED
    assert row(acme).delivery_status == DeliveryStatus.SENT


def test_an_empty_message_id_matches_no_token(sent_token):
    """Providers that return no id leave it empty; a receipt without an id is about none of them."""
    token = sent_token("")
    assert receipt("") == ("unknown", None)
    assert row(token).delivery_status == DeliveryStatus.SENT


def test_a_message_id_longer_than_the_column_matches_as_stored(make_token):
    long_id = "SM" + "a" * 200
    token = make_token()
    OTPToken.objects.mark_sent(token.pk, message_id=long_id, fee=None, region="", backend="acme")
    assert receipt(long_id)[0] == "delivered"
    assert row(token).delivery_status == DeliveryStatus.DELIVERED
