"""The outbox on PostgreSQL: disjoint batches under ``SKIP LOCKED``, one statement per batch.

SQLite has one writer at a time and records each sent message on its own
(``tests/test_outbox.py``); here the claim's row locks, the ``VALUES`` list
that records a batch, and the partial index the claim reads are PostgreSQL's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ciam_otp import crypto, outbox
from django_ciam_otp.managers.tokens import SentRow
from django_ciam_otp.models import DeliveryStatus, OTPClient, OTPToken

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEASE = dt.timedelta(seconds=25)


@pytest.fixture
def client() -> OTPClient:
    return OTPClient.objects.create(name="c", client_id="c")


def outbox_token(client: OTPClient, n: int, **fields: Any) -> OTPToken:
    """A pending token whose sealed message waits on its row (number ``n``)."""
    now = timezone.now()
    token_hash = secrets.token_hex(32)
    phone = f"+86136{n:08d}"
    values: dict[str, Any] = {
        "token_hash": token_hash,
        "client": client,
        "channel": "sms",
        "usage": "login",
        "recipient_hash": f"r{n}",
        "recipient_masked": crypto.mask_recipient(phone),
        "code_hash": "h",
        "code_length": 6,
        "code_expires_at": now + dt.timedelta(seconds=60),
        "expires_at": now + dt.timedelta(seconds=300),
        "delivery_envelope": crypto.seal({"h": token_hash[:16], "c": f"{n:06d}", "r": phone}),
        **fields,
    }
    return OTPToken.objects.create(**values)


def in_threads(actions: list[Callable[[], Any]]) -> list[Any]:
    """Run each action in a thread of its own (its own connection), released together."""
    start = threading.Barrier(len(actions))

    def run(action: Callable[[], Any]) -> Any:
        try:
            start.wait()
            return action()
        finally:
            connections.close_all()  # this thread's connection

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        return list(pool.map(run, actions))


def test_a_claim_skips_the_rows_another_transaction_holds(client: OTPClient) -> None:
    pks = [outbox_token(client, n).pk for n in range(6)]
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                locked = OTPToken.objects.select_for_update().filter(pk__in=pks[:3])
                assert len(list(locked.values_list("pk", flat=True))) == 3
                held.set()
                done.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with transaction.atomic(), connection.cursor() as cursor:
            # Waiting on the held rows instead of skipping them fails, never hangs.
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            batch = OTPToken.objects.claim_due(limit=3, now=timezone.now(), lease=LEASE)
    finally:
        done.set()
        holder.join()
    assert [t.pk for t in batch] == pks[3:]
    rest = OTPToken.objects.claim_due(limit=3, now=timezone.now(), lease=LEASE)
    assert [t.pk for t in rest] == pks[:3]  # once released, the next claim takes them


def test_the_last_look_waits_for_a_row_another_transaction_holds(client: OTPClient) -> None:
    """A row locked for another reason (a wrong code's ``UPDATE`` in verify) is not skipped
    by the run's last look: nothing else would take it once the flag is cleared."""
    (pk,) = [outbox_token(client, 0).pk]
    held = threading.Event()

    def hold_briefly() -> None:
        try:
            with transaction.atomic():
                OTPToken.objects.filter(pk=pk).update(attempts=1)  # as count_wrong_attempt
                held.set()
                time.sleep(0.3)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    try:
        assert held.wait(30)
        skipped = OTPToken.objects.claim_due(limit=5, now=timezone.now(), lease=LEASE)
        waited = OTPToken.objects.claim_due(
            limit=5, now=timezone.now(), lease=LEASE, skip_locked=False
        )
    finally:
        holder.join()
    assert skipped == []
    assert [t.pk for t in waited] == [pk]
    assert OTPToken.objects.get(pk=pk).attempts == 1  # the other transaction's write stands


def test_concurrent_claims_take_disjoint_batches(client: OTPClient) -> None:
    pks = {outbox_token(client, n).pk for n in range(20)}
    now = timezone.now()

    def claim() -> list[int]:
        return [t.pk for t in OTPToken.objects.claim_due(limit=5, now=now, lease=LEASE)]

    batches = in_threads([claim] * 4)
    assert [len(b) for b in batches] == [5] * 4
    assert set().union(*map(set, batches)) == pks  # every token, each in one batch
    assert set(OTPToken.objects.values_list("delivery_status", flat=True)) == {
        DeliveryStatus.SENDING
    }


def test_concurrent_runs_send_each_message_once(
    client: OTPClient, settings: Any, sms_outbox: list[Any]
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_BATCH_SIZE": 3}
    tokens = [outbox_token(client, n) for n in range(30)]

    def run() -> int:
        return outbox.deliver_due(
            started=time.monotonic(), publish_retry=lambda retry: True, linger=0.0
        ).sent

    assert sum(in_threads([run] * 4)) == 30
    assert sorted(m.token_id for m in sms_outbox) == sorted(t.pk for t in tokens)
    assert set(OTPToken.objects.values_list("delivery_status", "delivery_envelope")) == {
        (DeliveryStatus.SENT, "")
    }


def test_a_batch_is_recorded_in_one_statement_and_an_outlived_claim_is_left_alone(
    client: OTPClient,
) -> None:
    tokens = [outbox_token(client, n) for n in range(3)]
    claimed_at = timezone.now()
    batch = OTPToken.objects.claim_due(limit=10, now=claimed_at, lease=LEASE)
    assert [t.pk for t in batch] == [t.pk for t in tokens]
    taken_over = tokens[1]  # another run took this claim over (it outlived the lease)
    OTPToken.objects.filter(pk=taken_over.pk).update(
        delivery_started_at=claimed_at + dt.timedelta(seconds=1)
    )
    rows = [
        SentRow(tokens[0].pk, "m-0", 2, "CN", "main"),
        SentRow(taken_over.pk, "m-1", 1, "CN", "main"),
        SentRow(tokens[2].pk, "m-2", 40000, "CN", "backup"),  # a fee out of range: unknown
    ]
    with CaptureQueriesContext(connection) as queries:
        recorded = OTPToken.objects.mark_sent_many(rows, claimed_at=claimed_at)
    assert len(queries.captured_queries) == 1
    assert recorded == {tokens[0].pk, tokens[2].pk}

    sent = {t.pk: t for t in OTPToken.objects.filter(pk__in=recorded)}
    for pk, message_id, fee, backend in [
        (tokens[0].pk, "m-0", 2, "main"),
        (tokens[2].pk, "m-2", None, "backup"),
    ]:
        stored = sent[pk]
        assert (stored.delivery_status, stored.delivery_envelope) == (DeliveryStatus.SENT, "")
        assert (stored.provider_message_id, stored.fee, stored.billed_region) == (
            message_id,
            fee,
            "CN",
        )
        assert (stored.delivery_backend, stored.delivery_attempts) == (backend, 1)
        assert stored.sent_at is not None
    left = OTPToken.objects.get(pk=taken_over.pk)
    assert (left.delivery_status, left.provider_message_id, left.delivery_attempts) == (
        DeliveryStatus.SENDING,
        "",
        0,
    )
    assert left.delivery_envelope == taken_over.delivery_envelope


def test_a_run_records_each_batch_in_one_statement(
    client: OTPClient, settings: Any, sms_outbox: list[Any]
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_BATCH_SIZE": 2}
    for n in range(5):
        outbox_token(client, n)
    with CaptureQueriesContext(connection) as queries:
        run = outbox.deliver_due(
            started=time.monotonic(), publish_retry=lambda retry: True, linger=0.0
        )
    statements = [q["sql"] for q in queries.captured_queries]
    claims = [s for s in statements if s.startswith("UPDATE") and "SKIP LOCKED" in s]
    last_look = [s for s in statements if "FOR UPDATE)" in s]  # waits for locked rows
    recorded = [s for s in statements if s.startswith("UPDATE") and "FROM (VALUES" in s]
    assert len(claims) == 3  # 2 + 2 + 1
    assert len(last_look) == 1  # then the last look after the flag is cleared
    assert len(recorded) == 3  # one per batch
    assert len(statements) == 4 + 3 + 1  # and the look for other runs' claims
    assert run.sent == len(sms_outbox) == 5


class Rollback(Exception):
    pass


def plan(statement: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + statement)
        return "\n".join(line for (line,) in cursor.fetchall())


def test_the_claim_reads_the_outbox_through_its_partial_index(client: OTPClient) -> None:
    now = timezone.now()
    OTPToken.objects.bulk_create(
        OTPToken(
            token_hash=f"done{n}",
            client=client,
            channel="sms",
            usage="login",
            recipient_hash=f"r{n}",
            recipient_masked="+86 136****5678",
            code_hash="h",
            code_length=6,
            code_expires_at=now + dt.timedelta(seconds=60),
            expires_at=now + dt.timedelta(seconds=300),
            delivery_status=DeliveryStatus.SENT if n % 4 else DeliveryStatus.QUEUED,
        )
        for n in range(20_000)
    )
    for n in range(5):
        outbox_token(client, n)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {OTPToken._meta.db_table}")

    with CaptureQueriesContext(connection) as queries, contextlib.suppress(Rollback):
        with transaction.atomic():
            OTPToken.objects.claim_due(limit=50, now=now, lease=LEASE)
            OTPToken.objects.oldest_outbox_claim(now=now)
            raise Rollback
    claim, oldest = (q["sql"] for q in queries.captured_queries if "delivery_envelope" in q["sql"])
    assert claim.startswith("UPDATE") and "SKIP LOCKED" in claim
    assert "ciam_otp_token_outbox_idx" in plan(claim), plan(claim)
    assert "ciam_otp_token_outbox_idx" in plan(oldest), plan(oldest)
