"""Failures of the servers around the app, and what the caller and the recipient see.

Broker down: 503 quickly, nothing consumed, and working again as soon as the
broker is back. Rate-limit cache down: 503 (fail closed) or an uncounted send
(fail open), never a 500. Provider trouble: retries with backoff inside the
code's validity, one message; a permanent error gives the quota back. A worker
that dies mid-delivery: the task comes back and the code still arrives once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from django_ciam_otp import outbox
from tests.support.servers import PYTHON, REPO, wait_until

from .conftest import (
    SHORT_SOURCE,
    delivered,
    e164,
    new_phone,
    post,
    send_sms,
)
from .fault_sms import key_for

pytestmark = pytest.mark.integration

PURGE_TASK = "django_ciam_otp.purge_otp_tokens"
UNAVAILABLE = {
    "error": "temporarily_unavailable",
    "error_description": "Failed to send OTP. Please try again later.",
}


def plan(stack_env_or_dir, phone: str, *instructions: str) -> None:
    """Script the fake provider for one number (see fault_sms.py)."""
    control = getattr(stack_env_or_dir, "control_dir", stack_env_or_dir)
    (control / f"{key_for(e164(phone))}.plan").write_text("".join(f"{i}\n" for i in instructions))


def attempts(control_dir, phone: str) -> list[tuple[float, str]]:
    path = control_dir / f"{key_for(e164(phone))}.attempts"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(float(row[0]), row[2]) for row in rows]


# --- the broker -----------------------------------------------------------------------


def test_broker_down_is_503_within_3s_consumes_nothing_and_recovers(
    own_servers, stack_env, redis_cache, db, make_client
):
    broker = own_servers.redis("broker-faults")
    env = stack_env(cache=redis_cache.url + "/3", broker=broker.url + "/0")
    web = own_servers.web(env)
    client = make_client(sms_quota=10)
    assert send_sms(web.url, client, new_phone()).status == 200  # the connection is warm
    # That send woke the batch task; until its flag lapses (no worker here clears it) a
    # send publishes nothing, so it would not meet the broker at all.
    time.sleep(outbox.WAKE_SECONDS + 0.2)

    phone = new_phone()
    timings = {}
    for fault in ("hung", "refused"):
        if fault == "hung":
            broker.pause()  # accepts TCP connections, never answers
        else:
            broker.resume()
            broker.stop()  # connection refused
        answer = send_sms(web.url, client, phone)
        timings[fault] = answer.seconds
        assert (answer.status, answer.body) == (503, UNAVAILABLE), (fault, answer.body)
        assert answer.seconds <= 3.0, (fault, answer.seconds)
        # Nothing consumed: no token, no quota.
        assert len(db.tokens(client.client_id)) == 1
        assert db.quota_used(client.client_id) == 1

    broker.start()  # back, on the same port, empty
    answer = send_sms(web.url, client, phone)
    # 200, not sms_rate_limit_exceeded: the refused attempts handed their 1/30s hit back.
    assert answer.status == 200, answer.body
    assert len(db.tokens(client.client_id)) == 2
    assert db.quota_used(client.client_id) == 2
    assert broker.client().llen("celery") == 1  # the batch task is queued for a worker
    print(f"\n503 latency with the broker down: {timings}")


# --- the rate-limit cache ---------------------------------------------------------------


def test_cache_down_fails_closed_by_default_and_open_when_configured(
    own_servers, stack_env, redis_broker, db, make_client, shared_stack
):
    cache = own_servers.redis("cache-faults")
    base = {"cache": cache.url + "/0", "broker": redis_broker.url + "/0"}
    closed = own_servers.web(stack_env(**base), name="fail-closed")
    opened = own_servers.web(stack_env(**base, OTP_RATE_LIMIT_FAIL_OPEN="true"), name="fail-open")
    client = make_client(sms_quota=10)

    results = {}
    for fault in ("hung", "refused"):
        if fault == "hung":
            cache.pause()
        else:
            cache.resume()
            cache.stop()
        used = db.quota_used(client.client_id)
        answer = send_sms(closed.url, client, new_phone())
        results[f"closed/{fault}"] = answer.seconds
        assert (answer.status, answer.body) == (503, UNAVAILABLE), (fault, answer.body)
        assert answer.seconds <= 3.0, (fault, answer.seconds)
        assert db.quota_used(client.client_id) == used  # nothing consumed

        phone = new_phone()
        answer = send_sms(opened.url, client, phone)
        results[f"open/{fault}"] = answer.seconds
        assert answer.status == 200, (fault, answer.body)
        wait_until(lambda p=phone: delivered(shared_stack.sms_dir, {e164(p)}), 15, what="delivery")

    assert db.quota_used(client.client_id) == 2  # the quota still counts when limits cannot
    cache.start()
    # Back within the circuit breaker's 2 s (counters.BREAKER_SECONDS).
    started = time.monotonic()
    wait_until(lambda: send_sms(closed.url, client, new_phone()).status == 200, 5, interval=0.2)
    results["recovered after"] = time.monotonic() - started
    print(f"\nanswer times with the cache down: {results}")


# --- the provider --------------------------------------------------------------------------


def test_transient_errors_are_retried_with_backoff_and_deliver_once(shared_stack, db, make_client):
    client = make_client(sms_quota=10)
    phone = new_phone()
    plan(shared_stack.control_dir, phone, "transient", "transient", "transient")
    answer = send_sms(shared_stack.web.url, client, phone)
    assert answer.status == 200

    wait_until(lambda: delivered(shared_stack.sms_dir, {e164(phone)}), 30, what="the delivery")
    time.sleep(0.5)
    assert len(delivered(shared_stack.sms_dir, {e164(phone)})) == 1
    tried = attempts(shared_stack.control_dir, phone)
    assert [what for _, what in tried] == ["transient"] * 3 + ["deliver"]
    # Full-jitter exponential backoff: the n-th wait is at most 1 s * 2**n (+ task overhead).
    gaps = [later - earlier for (earlier, _), (later, _) in zip(tried, tried[1:], strict=False)]
    for n, gap in enumerate(gaps):
        assert gap <= 2**n + 1.5, (n, gaps)
    (token,) = db.tokens(client.client_id)
    assert token["delivery_status"] == "sent"
    assert token["delivery_attempts"] == 4
    assert token["sent_at"] < token["code_expires_at"]
    assert db.quota_used(client.client_id) == 1
    print(f"\nbackoff gaps between attempts: {[round(g, 2) for g in gaps]} s")


def test_retries_stop_before_the_code_expires(shared_stack, db, make_client):
    """A provider that never recovers: the last try is inside the 10 s validity, then failed."""
    client = make_client(sms_quota=10)
    phone = new_phone()
    plan(shared_stack.control_dir, phone, *["transient"] * 30)
    answer = send_sms(shared_stack.web.url, client, phone, auth_source_id=SHORT_SOURCE)
    assert answer.status == 200

    def finished() -> bool:
        return db.tokens(client.client_id)[0]["delivery_status"] == "failed"

    wait_until(finished, 20, interval=0.2, what="the delivery to be given up")
    (token,) = db.tokens(client.client_id)
    assert token["status"] == "failed"
    tried = attempts(shared_stack.control_dir, phone)
    assert 2 <= len(tried) <= 6  # DELIVERY_MAX_RETRIES = 5
    assert max(t for t, _ in tried) < token["code_expires_at"].timestamp()
    assert delivered(shared_stack.sms_dir, {e164(phone)}) == []
    assert db.quota_used(client.client_id) == 0  # given back


def test_permanent_error_fails_the_token_returns_quota_and_verify_says_so(
    shared_stack, db, make_client
):
    client = make_client(sms_quota=1)
    phone = new_phone()
    plan(shared_stack.control_dir, phone, "permanent")
    answer = send_sms(shared_stack.web.url, client, phone)
    assert answer.status == 200
    # (Not asserted here that the quota is used: the worker may already have given it back.)

    wait_until(
        lambda: db.tokens(client.client_id)[0]["delivery_status"] == "failed", 15, what="failure"
    )
    (token,) = db.tokens(client.client_id)
    assert token["status"] == "failed"
    assert token["delivery_error"] == "fake provider: invalid number"
    assert db.quota_used(client.client_id) == 0
    assert [what for _, what in attempts(shared_stack.control_dir, phone)] == ["permanent"]
    assert delivered(shared_stack.sms_dir, {e164(phone)}) == []
    # The quota of one was taken and given back: the next send has it again.
    assert send_sms(shared_stack.web.url, client, new_phone()).status == 200
    assert db.quota_used(client.client_id) == 1

    body = {"otp_token": answer.body["otp_token"], "otp": "123456", "phone_number": phone}
    verify = post(shared_stack.web.url, "/otp/verify", body, client)
    assert verify.status == 400
    assert verify.error == "invalid_otp_token"
    assert "could not be delivered" in verify.body["error_description"]


# --- the worker -------------------------------------------------------------------------------


@pytest.mark.parametrize("what_dies", ["the whole worker", "one pool process"])
def test_worker_killed_mid_delivery_still_delivers_exactly_once(
    what_dies, own_servers, stack_env, redis_cache, db, make_client
):
    broker = own_servers.redis("broker-kill")
    env = stack_env(cache=redis_cache.url + "/4", broker=broker.url + "/0")
    web = own_servers.web(env)
    first = own_servers.worker(env, name="doomed")
    client = make_client(sms_quota=10)
    phone = new_phone()
    control = stack_env.control_dir
    plan(control, phone, "sleep 30")
    sending = control / f"{key_for(e164(phone))}.sending"

    assert send_sms(web.url, client, phone).status == 200
    wait_until(sending.exists, 15, what="the provider call to start")
    started = time.monotonic()
    if what_dies == "the whole worker":
        first.kill()  # SIGKILL to every process: the machine went away
        own_servers.worker(env, name="rescuer")
    else:
        os.kill(int(sending.read_text()), signal.SIGKILL)  # the OOM killer took one child

    sms_dir = stack_env.sms_dir
    wait_until(lambda: delivered(sms_dir, {e164(phone)}), 30, interval=0.2, what="redelivery")
    recovered = time.monotonic() - started
    time.sleep(1.5)
    assert len(delivered(sms_dir, {e164(phone)})) == 1
    assert [what for _, what in attempts(control, phone)] == ["sleep", "deliver"]
    (token,) = db.tokens(client.client_id)
    assert token["delivery_status"] == "sent"
    assert db.quota_used(client.client_id) == 1
    print(f"\n{what_dies} killed: delivered {recovered:.1f} s later")


def test_task_arriving_after_the_code_expired_sends_nothing_and_returns_quota(
    own_servers, stack_env, redis_cache, db, make_client
):
    """Workers were down for longer than the code's validity: nothing goes out late."""
    broker = own_servers.redis("broker-late")
    env = stack_env(cache=redis_cache.url + "/5", broker=broker.url + "/0")
    web = own_servers.web(env)
    client = make_client(sms_quota=10)
    phone = new_phone()
    answer = send_sms(web.url, client, phone, auth_source_id=SHORT_SOURCE)
    assert answer.status == 200
    (token,) = db.tokens(client.client_id)
    time.sleep(max(0.0, token["code_expires_at"].timestamp() - time.time()) + 0.5)

    worker = own_servers.worker(env, name="late")
    wait_until(lambda: broker.client().llen("celery") == 0, 10, what="the task to be taken")
    time.sleep(1)
    assert delivered(stack_env.sms_dir, {e164(phone)}) == []
    assert attempts(stack_env.control_dir, phone) == []  # the provider was never called
    # The batch task ran (it has no expires: a late run still delivers the codes still
    # valid) and left the expired one alone.
    assert "deliver_due" in worker.log()
    assert db.tokens(client.client_id)[0]["delivery_status"] == "queued"

    # The beat job gives the quota of undelivered, expired codes back.
    subprocess.run(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "example_project",
            "call",
            PURGE_TASK,
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=30,
    )
    wait_until(
        lambda: db.tokens(client.client_id)[0]["delivery_status"] == "expired", 15, what="sweep"
    )
    assert db.quota_used(client.client_id) == 0
