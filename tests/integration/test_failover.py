"""Failover, circuits and delivery receipts on the real stack (PostgreSQL, Redis, a Celery worker).

Two SMS backends in order, as ``OTP_SMS_BACKENDS`` lists them: ``fault`` (the
scripted fake provider of ``fault_sms.py``) and ``second`` (a filebased
backend that takes receipts). Each test builds its own web server and worker
on its own Redis databases, so circuits and stops never leak between tests.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.servers import wait_until

from .conftest import Answer, delivered, e164, new_phone, post, send_sms
from .fault_sms import key_for

pytestmark = pytest.mark.integration

BACKENDS = "tests.integration.fault_sms.SMSBackend,tests.integration.fault_sms.ReceiptsBackend"
SECRET = "receipts-shared-secret-for-the-tests"  # noqa: S105


def plan(control_dir: Any, phone: str, *instructions: str) -> None:
    (control_dir / f"{key_for(e164(phone))}.plan").write_text(
        "".join(f"{i}\n" for i in instructions)
    )


def fault_attempts(control_dir: Any, phone: str) -> list[str]:
    path = control_dir / f"{key_for(e164(phone))}.attempts"
    return [line.split()[2] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def failover_stack(own_servers, stack_env, redis_cache, request):
    """A web server and a worker with two SMS backends; the param: "FAILURES,WINDOW,COOL_DOWN"."""
    circuit = getattr(request, "param", "1000,60,30")
    db_index = 5 + abs(hash(request.node.name)) % 8
    broker = own_servers.redis(f"broker-failover-{db_index}")
    env = stack_env(
        cache=f"{redis_cache.url}/{db_index}",
        broker=broker.url + "/0",
        OTP_SMS_BACKENDS=BACKENDS,
        OTP_SMS_CIRCUIT=circuit,
        OTP_LOOKUP_CACHE_SECONDS="0",
        FAULT_SMS_RECEIPT_SECRET=SECRET,
    )
    web = own_servers.web(env)
    own_servers.worker(env)
    return web, stack_env


def wait_for_delivery(db: Any, client_id: str, count: int) -> list[dict[str, Any]]:
    """The client's tokens once ``count`` of them reached an outcome."""
    finished = ("sent", "failed", "delivered", "undelivered")

    def done() -> bool:
        return sum(t["delivery_status"] in finished for t in db.tokens(client_id)) >= count

    wait_until(done, 30, interval=0.1, what=f"{count} deliveries")
    return db.tokens(client_id)


def test_a_backend_failing_every_time_leaves_each_code_to_the_next_exactly_once(
    failover_stack, db, make_client
):
    web, stack_env = failover_stack
    client = make_client(sms_quota=20)
    phones = [new_phone() for _ in range(6)]
    for phone in phones:
        plan(stack_env.control_dir, phone, *["transient"] * 20)
        assert send_sms(web.url, client, phone).status == 200
    tokens = wait_for_delivery(db, client.client_id, len(phones))

    assert [t["delivery_status"] for t in tokens] == ["sent"] * len(phones)
    assert [t["delivery_backend"] for t in tokens] == ["second"] * len(phones)
    files = delivered(stack_env.sms_dir, {e164(p) for p in phones})
    assert sorted(f.phone_number for f in files) == sorted(e164(p) for p in phones)  # once each
    for phone in phones:
        assert fault_attempts(stack_env.control_dir, phone) == ["transient"]  # tried once, left
    assert db.quota_used(client.client_id) == len(phones)


@pytest.mark.parametrize("failover_stack", ["3,60,3"], indirect=True)
def test_the_circuit_opens_after_its_threshold_and_closes_after_its_cool_down(
    failover_stack, db, make_client
):
    web, stack_env = failover_stack
    client = make_client(sms_quota=20)
    sent = 0

    def send(phone: str) -> None:
        nonlocal sent
        assert send_sms(web.url, client, phone).status == 200
        sent += 1
        wait_for_delivery(db, client.client_id, sent)

    failing = [new_phone() for _ in range(3)]
    for phone in failing:  # three transient failures: the threshold
        plan(stack_env.control_dir, phone, *["transient"] * 5)
        send(phone)
    opened_at = time.monotonic()
    skipped = [new_phone() for _ in range(2)]
    for phone in skipped:  # open: "fault" is not even asked
        send(phone)
        assert fault_attempts(stack_env.control_dir, phone) == []
    time.sleep(max(0.0, 3.3 - (time.monotonic() - opened_at)))  # the cool-down is over
    trial, after = new_phone(), new_phone()
    send(trial)  # half-open: one try, which succeeds and closes the circuit
    send(after)
    assert fault_attempts(stack_env.control_dir, trial) == ["deliver"]
    assert fault_attempts(stack_env.control_dir, after) == ["deliver"]

    backends = {t["id"]: t["delivery_backend"] for t in db.tokens(client.client_id)}
    assert list(backends.values()) == ["second"] * 5 + ["fault"] * 2
    assert len(delivered(stack_env.sms_dir, {e164(p) for p in failing + skipped})) == 5


def test_a_failure_of_the_recipient_does_not_fail_over(failover_stack, db, make_client):
    web, stack_env = failover_stack
    client = make_client(sms_quota=5)
    phone = new_phone()
    plan(stack_env.control_dir, phone, "permanent")
    assert send_sms(web.url, client, phone).status == 200
    [token] = wait_for_delivery(db, client.client_id, 1)

    assert (token["delivery_status"], token["status"]) == ("failed", "failed")
    assert token["delivery_backend"] == "fault"
    assert delivered(stack_env.sms_dir, {e164(phone)}) == []  # "second" never called
    assert db.quota_used(client.client_id) == 0  # given back


def post_receipts(base_url: str, body: Any, *, secret: str | None = SECRET) -> Answer:
    query = f"?secret={secret}" if secret is not None else ""
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the tests
        f"{base_url}/otp/receipts/second/{query}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return Answer(response.status, {}, dict(response.headers), 0.0)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return Answer(exc.code, json.loads(raw) if raw else {}, dict(exc.headers), 0.0)


def test_receipts_signed_wrongly_replayed_or_unknown_do_what_the_docs_say(
    failover_stack, db, make_client
):
    web, stack_env = failover_stack
    client = make_client(sms_quota=5)
    phones = [new_phone(), new_phone()]
    otp_tokens = []
    for phone in phones:
        plan(stack_env.control_dir, phone, "transient")  # delivered by "second"
        answer = send_sms(web.url, client, phone)
        otp_tokens.append(answer.body["otp_token"])
    good, bad = wait_for_delivery(db, client.client_id, 2)
    assert good["delivery_backend"] == bad["delivery_backend"] == "second"

    def row(token_id: int) -> dict[str, Any]:
        return next(t for t in db.tokens(client.client_id) if t["id"] == token_id)

    # Wrong or missing secret: 403, and the named message is untouched.
    for secret in ("wrong", None):
        receipt = [{"id": good["provider_message_id"], "delivered": True, "status": "DELIVRD"}]
        answer = post_receipts(web.url, receipt, secret=secret)
        assert answer.status == 403 and answer.body["error"] == "access_denied"
        assert row(good["id"])["delivery_status"] == "sent"

    # Authentic: delivered; replayed: nothing changes.
    receipt = [{"id": good["provider_message_id"], "delivered": True, "status": "DELIVRD"}]
    assert post_receipts(web.url, receipt).status == 200
    first = row(good["id"])
    assert first["delivery_status"] == "delivered" and first["receipt_at"] is not None
    assert post_receipts(web.url, receipt).status == 200
    assert row(good["id"]) == first

    # Unknown id: acknowledged, nothing changes anywhere.
    before = db.tokens(client.client_id)
    assert post_receipts(web.url, [{"id": "nope", "delivered": False, "status": "X"}]).status == 200
    assert db.tokens(client.client_id) == before

    # Undelivered: the code answers as a failed delivery; the quota stays used (it was billed).
    used = db.quota_used(client.client_id)
    receipt = [{"id": bad["provider_message_id"], "delivered": False, "status": "UNDELIV"}]
    assert post_receipts(web.url, receipt).status == 200
    assert (row(bad["id"])["delivery_status"], row(bad["id"])["status"]) == (
        "undelivered",
        "failed",
    )
    assert db.quota_used(client.client_id) == used
    (message,) = delivered(stack_env.sms_dir, {e164(phones[1])})
    body = {"otp_token": otp_tokens[1], "otp": message.code, "phone_number": phones[1]}
    answer = post(web.url, "/otp/verify", {**body, "usage": "login"}, client)
    assert answer.error == "invalid_otp_token", answer.body
    assert "could not be delivered" in answer.body["error_description"]


TWILIO_TOKEN = "integration-twilio-auth-token"  # noqa: S105


@pytest.fixture
def twilio_stack(own_servers, stack_env, redis_cache):
    """``fault`` then Twilio's backend (writing files instead of calling Twilio)."""
    broker = own_servers.redis("broker-twilio")
    env = stack_env(
        cache=f"{redis_cache.url}/14",
        broker=broker.url + "/0",
        OTP_SMS_BACKENDS="tests.integration.fault_sms.SMSBackend,"
        "tests.integration.fault_sms.TwilioFileBackend",
        OTP_LOOKUP_CACHE_SECONDS="0",
        FAULT_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
    )
    web = own_servers.web(env)
    own_servers.worker(env)
    return web, stack_env


def post_twilio(url: str, form: dict[str, str], signature: str) -> int:
    from urllib.parse import urlencode

    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the tests
        url,
        data=urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_twilio_status_callbacks_need_twilios_signature(twilio_stack, db, make_client):
    from twilio.request_validator import RequestValidator

    web, stack_env = twilio_stack
    client = make_client(sms_quota=5)
    phone = new_phone()
    plan(stack_env.control_dir, phone, "transient")  # failed over to Twilio
    assert send_sms(web.url, client, phone).status == 200
    [token] = wait_for_delivery(db, client.client_id, 1)
    assert token["delivery_backend"] == "twilio" and token["provider_message_id"].startswith("SM")

    url = f"{web.url}/otp/receipts/twilio/"
    form = {"MessageSid": token["provider_message_id"], "MessageStatus": "delivered"}
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    forged = RequestValidator("another-token").compute_signature(url, form)

    def status() -> str:
        return str(db.tokens(client.client_id)[0]["delivery_status"])

    assert post_twilio(url, form, forged) == 403
    assert post_twilio(url, {**form, "MessageStatus": "undelivered"}, signed) == 403  # tampered
    assert status() == "sent"
    assert post_twilio(url, form, signed) == 200
    assert status() == "delivered"
    assert post_twilio(url, form, signed) == 200  # replayed: nothing changes
    assert status() == "delivered"
    unknown = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "undelivered"}
    unknown_signed = RequestValidator(TWILIO_TOKEN).compute_signature(url, unknown)
    assert post_twilio(url, unknown, unknown_signed) == 200
    assert status() == "delivered"
