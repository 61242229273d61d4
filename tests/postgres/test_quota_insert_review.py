"""Outsider's review of the send's quota-and-token statement with no transaction around it.

Commits f421614 and a2a1759: on PostgreSQL, outside a caller's transaction,
``issuing._issue`` runs ``Quota.objects.consume_and_insert`` with no
``transaction.atomic`` around it. The statement alone is all or nothing, but
everything the old transaction also covered after the INSERT (``post_save``
receivers, ``on_commit`` scheduling) now runs after the row is committed, or
in a mode where ``on_commit`` cannot be used at all.

The first two tests are the review's two defects (they passed on dda40b0, the
code before the change, and failed on a2a1759; fixed since: the statement runs
alone only with no ``post_save`` receiver and with autocommit on,
``flows.quotas.needs_no_transaction``). The other tests document what holds.

Run in its own session::

    CIAM_OTP_PG_LOCALE=icu .venv/bin/python -m pytest -q -p no:cacheprovider \
        tests/postgres/test_quota_insert_review.py
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from django_ciam_otp import flows, tasks
from django_ciam_otp.exceptions import InsufficientSMSQuota, TemporarilyUnavailable
from django_ciam_otp.models import OTPClient, OTPToken, Quota
from tests.support.brokers import DeadBroker

from .test_transitions import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

#: Mainland numbers, each in a prefix block of its own (the conversion monitor stays quiet).
NUMBERS = [f"{p}{i}1234567" for p in ("136", "137", "138", "139", "135") for i in range(10)]
_next = itertools.count()


def phone() -> str:
    return NUMBERS[next(_next) % len(NUMBERS)]


@pytest.fixture
def owner(client_factory: Any) -> OTPClient:
    client: OTPClient = client_factory(sms_quota=10).client
    return client


def used() -> list[int]:
    return sorted(Quota.objects.values_list("used", flat=True))


# --- the review's two defects, fixed ------------------------------------------------------------


class ReceiverFailed(Exception):
    pass


def test_a_post_save_receiver_that_raises_leaves_no_token_and_no_quota_used(owner):
    """A ``post_save`` receiver that raised rolled the token and the quota back when
    ``token.save()`` ran inside ``transaction.atomic``, and must still: had the statement
    committed before ``post_save`` was sent, the caller would get the exception (a 500),
    yet the token would stay in the outbox with its sealed code (the beat's sweep
    delivering it later) and the quota used. With a receiver there is a transaction."""
    assert connection.vendor == "postgresql" and not connection.in_atomic_block

    def boom(sender: Any, instance: OTPToken, **kwargs: Any) -> None:
        raise ReceiverFailed("audit log unavailable")

    post_save.connect(boom, sender=OTPToken, dispatch_uid="review-boom")
    try:
        with pytest.raises(ReceiverFailed):
            flows.send_otp(owner, usage="signup", phone_number=phone())
    finally:
        post_save.disconnect(sender=OTPToken, dispatch_uid="review-boom")
    stranded = list(OTPToken.objects.values_list("delivery_status", "delivery_envelope"))
    assert stranded == [], f"failed send left a token behind: {stranded}"
    assert used() == [0]


def test_a_send_with_autocommit_off_waits_for_the_callers_commit(owner):
    """Manual transaction management (``transaction.set_autocommit(False)``, or
    ``AUTOCOMMIT: False``): ``in_atomic_block`` is False there, and
    ``transaction.on_commit`` is refused outside an atomic block when autocommit is off
    (TransactionManagementError: a 500). The send keeps its ``transaction.atomic``,
    which queues the wake-up for the caller's commit."""
    transaction.set_autocommit(False)
    try:
        result = flows.send_otp(owner, usage="signup", phone_number=phone())
        transaction.commit()  # the caller commits
    except BaseException:
        transaction.rollback()
        raise
    finally:
        transaction.set_autocommit(True)  # Django runs the send's on_commit hand-off here
    assert OTPToken.objects.filter(pk=result.token.pk).exists()
    assert used() == [1]


# --- what holds ---------------------------------------------------------------------------------


def test_a_post_save_receiver_that_raises_inside_a_callers_transaction_rolls_back(owner):
    """Inside a caller's transaction the savepoint still covers the receiver."""

    def boom(sender: Any, instance: OTPToken, **kwargs: Any) -> None:
        raise ReceiverFailed

    post_save.connect(boom, sender=OTPToken, dispatch_uid="review-boom-2")
    try:
        with pytest.raises(ReceiverFailed), transaction.atomic():
            flows.send_otp(owner, usage="signup", phone_number=phone())
    finally:
        post_save.disconnect(sender=OTPToken, dispatch_uid="review-boom-2")
    assert not OTPToken.objects.exists() and used() == [0]


def test_a_broker_failure_after_the_lone_statement_is_undone(owner, monkeypatch):
    """No transaction: the statement committed, then the wake-up's publish failed;
    ``issuing._undo`` withdraws the token and gives the quota back (503)."""
    monkeypatch.setattr(tasks, "deliver_due", DeadBroker)
    with pytest.raises(TemporarilyUnavailable):
        flows.send_otp(owner, usage="signup", phone_number=phone())
    assert not OTPToken.objects.filter(status="pending").exists()
    assert used() == [0]


def test_clients_sharing_a_rolled_over_site_wide_quota_never_over_send(client_factory):
    """Many clients, each with its own quota, share one site-wide row whose period rolled
    over: the statement's ``locked`` CTE re-reads the row a concurrent send left (EvalPlanQual)
    and its UPDATE writes that, so exactly ``limit`` sends pass and the period restarts once."""
    long_ago = timezone.now() - dt.timedelta(days=3)
    Quota.objects.create(
        client=None, channel="sms", limit=4, used=4, period="daily", period_start=long_ago
    )
    owners = [client_factory(sms_quota=100).client for _ in range(8)]
    numbers = iter(range(8))

    def send() -> str:
        i = next(numbers)
        flows.send_otp(owners[i], usage="signup", phone_number=NUMBERS[40 + i % 10])
        return "sent"

    answers = race(send, threads=8)
    assert answers.count("sent") == 4, answers
    assert all(isinstance(a, InsufficientSMSQuota) for a in answers if a != "sent"), answers
    site = Quota.objects.get(client=None)
    assert site.used == 4 and site.period_start > long_ago
    assert sum(Quota.objects.filter(client__isnull=False).values_list("used", flat=True)) == 4
    assert OTPToken.objects.filter(quota_consumed=True).count() == 4


def test_the_alarm_fires_once_per_threshold_outside_a_transaction(owner):
    """``on_commit`` outside a transaction runs at once: still once per threshold."""
    from django_ciam_otp import signals

    seen: list[int] = []

    def receiver(sender: Any, percent: int, **kwargs: Any) -> None:
        seen.append(percent)

    signals.quota_threshold_reached.connect(receiver, dispatch_uid="review-alarm")
    try:
        for _ in range(10):
            flows.send_otp(owner, usage="signup", phone_number=phone())
    finally:
        signals.quota_threshold_reached.disconnect(dispatch_uid="review-alarm")
    assert seen == [80, 100]
    with pytest.raises(InsufficientSMSQuota):
        flows.send_otp(owner, usage="signup", phone_number=phone())
    assert used() == [10]
