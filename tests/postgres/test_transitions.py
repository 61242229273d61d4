"""The once-only transitions under real concurrency: threads, each with its own connection.

SQLite serialises every writer, so ``tests/managers/`` can only show
that a second caller loses. Here the callers race on PostgreSQL, whose row
locks are what the conditional ``UPDATE``\\ s rely on: one claim wins, a quota
gives back once and never over-sends (on both the ``UPDATE … RETURNING`` path
and the ORM fallback), a code verifies once and wrong codes stop at the cap.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from django_ciam_otp.exceptions import InsufficientSMSQuota
from django_ciam_otp.models import OTPClient, OTPToken, Quota, TokenStatus

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12
LEASE = dt.timedelta(seconds=25)


def race(action: Callable[[], Any], threads: int = THREADS) -> list[Any]:
    """Run ``action`` in ``threads`` threads released together; each answer, or its exception."""
    start = threading.Barrier(threads)

    def run() -> Any:
        try:
            start.wait()
            return action()
        except Exception as exc:  # noqa: BLE001 - the answer under test
            return exc
        finally:
            connections.close_all()  # this thread's connection

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda _: run(), range(threads)))


@pytest.fixture
def client() -> OTPClient:
    return OTPClient.objects.create(name="c", client_id="c")


def token_for(client: OTPClient, **fields: Any) -> OTPToken:
    now = timezone.now()
    return OTPToken.objects.create(
        token_hash=f"t{OTPToken.objects.count()}",
        client=client,
        channel="sms",
        usage="login",
        recipient_hash="r",
        recipient_masked="+86 136****5678",
        code_hash="h",
        code_length=6,
        code_expires_at=now + dt.timedelta(seconds=60),
        expires_at=now + dt.timedelta(seconds=300),
        **fields,
    )


def test_the_database_is_postgresql() -> None:
    assert connection.vendor == "postgresql"


def test_one_worker_claims_a_delivery(client):
    token = token_for(client)
    now = timezone.now()
    answers = race(lambda: OTPToken.objects.claim_for_delivery(token.pk, now=now, lease=LEASE))
    assert [type(a) for a in answers if a is not None] == [OTPToken]


def test_one_worker_claims_a_delivery_read_first(client):
    token = token_for(client)
    now = timezone.now()
    answers = race(lambda: OTPToken.objects.claim_read(token.pk, now=now, lease=LEASE))
    assert answers.count(True) == 1 and answers.count(False) == THREADS - 1


def test_a_quota_is_given_back_once(client):
    Quota.objects.create(client=client, channel="sms", limit=50, used=20)
    token = token_for(client, quota_consumed=True)
    # Each thread holds its own stale copy that still says "consumed".
    answers = race(lambda: Quota.objects.give_back(OTPToken.objects.get(pk=token.pk)))
    assert answers.count(True) == 1 and answers.count(False) == THREADS - 1
    assert Quota.objects.get().used == 19


@pytest.mark.parametrize("returning", [True, False])
def test_a_quota_never_over_sends(client, returning):
    Quota.objects.create(client=client, channel="sms", limit=5)
    Quota.objects.create(client=None, channel="sms", limit=7, used=1)

    def send() -> int:
        with transaction.atomic():
            taken = Quota.objects.consume(client.pk, "sms", returning=returning)
        return len(taken)

    answers = race(send)
    assert answers.count(2) == 5
    assert all(isinstance(a, InsufficientSMSQuota) for a in answers if a != 2)
    assert sorted(Quota.objects.values_list("used", flat=True)) == [5, 6]


def test_a_code_is_verified_once(client):
    token = token_for(client)
    now = timezone.now()
    answers = race(lambda: OTPToken.objects.mark_verified(token.pk, now=now, max_attempts=3))
    assert answers.count(True) == 1
    assert OTPToken.objects.get(pk=token.pk).status == TokenStatus.VERIFIED


def test_concurrent_wrong_codes_stop_at_the_cap(client):
    token = token_for(client)

    def wrong() -> bool:
        with transaction.atomic():
            return OTPToken.objects.count_wrong_attempt(token.pk, max_attempts=3)

    answers = race(wrong)
    assert answers.count(True) == 3
    locked = OTPToken.objects.get(pk=token.pk)
    assert (locked.attempts, locked.status) == (3, TokenStatus.LOCKED)
