"""Delivery throughput of the Celery worker against a no-op task on the same broker.

Run by ``bench/run.py`` in the stack's environment:

    python -m bench.delivery N

With the worker's consumer paused (``cancel_consumer``), it stores ``N``
queued tokens in the outbox and wakes their delivery exactly as ``send_otp``
does (sealed envelope on the row, ``dispatch.wake`` after the commit: the
first publishes the batch task, the others find it pending); then it resumes
the consumer and times how long the worker takes to send every code (and to
empty the queue: queue length and Celery's ``unacked`` hash both zero), and
checks that the codes were sent. The same with ``N`` no-op tasks (``bench.noop``, one per token, the
arguments a task of a token's own has). Rounds run delivery, no-op, no-op, delivery. Prints one
JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from typing import Any


def _drained(broker: Any) -> bool:
    return broker.llen("celery") == 0 and broker.hlen("unacked") == 0


def _timed(done: Any, resume: Any, timeout: float) -> float:
    started = time.perf_counter()
    resume()
    deadline = started + timeout
    while not done():
        if time.perf_counter() > deadline:
            raise SystemExit("the worker did not empty the queue in time")
        time.sleep(0.005)
    return time.perf_counter() - started


def main(n: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    import redis
    from django.utils import timezone

    from bench.celery_control import add_consumer, cancel_consumer
    from bench.phones import number
    from bench.tasks import noop
    from django_ciam_otp import crypto, dispatch, outbox
    from django_ciam_otp.models import DeliveryStatus, OTPClient, OTPToken

    broker_url = os.environ["CELERY_BROKER_URL"]
    worker = os.environ["BENCH_WORKER_NAME"]
    broker = redis.Redis.from_url(broker_url)
    client = OTPClient.objects.get(client_id="TENANT_CLIENT_ID")

    deadline = time.monotonic() + 60  # deliveries of the load runs still in the queue
    while not _drained(broker) and time.monotonic() < deadline:
        time.sleep(0.05)

    def queued_tokens(first: int, *, outbox: bool) -> list[tuple[OTPToken, str]]:
        """``n`` tokens as ``send_otp`` stores them (queued), with their sealed envelopes."""
        now = timezone.now()
        expires = now + dt.timedelta(seconds=300)
        tokens, envelopes = [], []
        for i in range(first, first + n):
            token_hash = crypto.hash_token(crypto.new_otp_token())
            code = crypto.new_code(6)
            phone = "+86" + number(900_000_000 + i)
            tokens.append(
                OTPToken(
                    token_hash=token_hash,
                    client=client,
                    channel="sms",
                    usage="login",
                    recipient_hash=crypto.hash_recipient(phone),
                    recipient_masked=crypto.mask_recipient(phone),
                    code_hash=crypto.hash_code(token_hash, code),
                    code_length=6,
                    code_expires_at=expires,
                    expires_at=expires,
                    delivery_status=DeliveryStatus.QUEUED,
                    language="en",
                    created_at=now,
                )
            )
            envelopes.append(crypto.seal({"h": token_hash[:16], "c": code, "r": phone}))
            if outbox:
                tokens[-1].delivery_envelope = envelopes[-1]
        OTPToken.objects.bulk_create(tokens, batch_size=1000)
        return list(zip(tokens, envelopes, strict=True))

    seconds = {"delivery": 0.0, "noop": 0.0}
    sent = 0
    # delivery, no-op, no-op, delivery: a drift of the machine cancels out.
    for round_no, kind in enumerate(("delivery", "noop", "noop", "delivery")):
        cancel_consumer(broker_url, worker)
        try:
            items = queued_tokens(round_no * n, outbox=kind == "delivery")
            pks = [t.pk for t, _ in items]
            if kind == "delivery":
                outbox.release_wake()  # a flag left by an earlier phase would hide the wake-up
                for token, _ in items:
                    dispatch.wake(token)  # exactly as send_otp does after its commit

                def done(pks: list[int] = pks) -> bool:
                    # The outbox needs no broker message per code: done when every code is sent.
                    return (
                        _drained(broker)
                        and not OTPToken.objects.filter(
                            pk__in=pks, delivery_status=DeliveryStatus.QUEUED
                        ).exists()
                    )
            else:
                for token, envelope in items:
                    noop.apply_async(args=(token.pk, envelope), expires=token.code_expires_at)

                def done() -> bool:
                    return _drained(broker)

            seconds[kind] += _timed(done, lambda: add_consumer(broker_url, worker), 120)
        finally:
            add_consumer(broker_url, worker)
        if kind == "delivery":
            sent += OTPToken.objects.filter(
                pk__in=[t.pk for t, _ in items], delivery_status=DeliveryStatus.SENT
            ).count()
    return {
        "tasks": 2 * n,
        "delivered": sent,
        "delivery_seconds": seconds["delivery"],
        "noop_seconds": seconds["noop"],
        "delivery_per_s": 2 * n / seconds["delivery"],
        "noop_per_s": 2 * n / seconds["noop"],
        "ratio": seconds["noop"] / seconds["delivery"],
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
