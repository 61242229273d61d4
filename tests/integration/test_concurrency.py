"""Races on the real stack: quotas in PostgreSQL, rate limits in Redis, several processes."""

from __future__ import annotations

import collections
import time

import pytest

from tests.support.servers import wait_until

from .conftest import concurrently, delivered, e164, new_phone, send_sms

pytestmark = pytest.mark.integration


def test_quota_holds_under_200_concurrent_sends(shared_stack, db, make_client):
    """200 sends at once against a quota of 50: exactly 50 tokens, messages and used units."""
    client = make_client(sms_quota=50)
    phones = [new_phone() for _ in range(200)]
    urls = [web.url for web in shared_stack.webs]
    answers = concurrently(
        [lambda p=p, i=i: send_sms(urls[i % 2], client, p) for i, p in enumerate(phones)]
    )

    outcomes = collections.Counter((a.status, a.error) for a in answers)
    assert outcomes == {(200, None): 50, (400, "insufficient_sms_quota"): 150}, outcomes
    assert len(db.tokens(client.client_id)) == 50
    assert db.quota_used(client.client_id) == 50

    winners = {e164(p) for p, a in zip(phones, answers, strict=True) if a.status == 200}
    numbers = {e164(p) for p in phones}
    wait_until(
        lambda: len(delivered(shared_stack.sms_dir, numbers)) >= 50, 60, what="50 deliveries"
    )
    time.sleep(1)  # a 51st message would show up now
    messages = delivered(shared_stack.sms_dir, numbers)
    assert len(messages) == 50
    assert {m.phone_number for m in messages} == winners
    assert {t["delivery_status"] for t in db.tokens(client.client_id)} == {"sent"}


def test_one_number_gets_one_message_per_30s_across_two_servers(shared_stack, db, make_client):
    """20 sends at once to one number, spread over two gunicorn servers: one passes 1/30s."""
    client = make_client()
    phone = new_phone()
    urls = [web.url for web in shared_stack.webs]
    answers = concurrently([lambda i=i: send_sms(urls[i % 2], client, phone) for i in range(20)])

    outcomes = collections.Counter((a.status, a.error) for a in answers)
    assert outcomes == {(200, None): 1, (400, "sms_rate_limit_exceeded"): 19}, outcomes
    refused = [a for a in answers if a.status == 400]
    assert all(
        a.body["error_description"] == "SMS rate limit exceeded for same phone number"
        for a in refused
    )
    assert all(1 <= int(a.headers["Retry-After"]) <= 30 for a in refused)
    assert len(db.tokens(client.client_id)) == 1
    wait_until(lambda: delivered(shared_stack.sms_dir, {e164(phone)}), 15, what="the message")
    time.sleep(0.5)
    assert len(delivered(shared_stack.sms_dir, {e164(phone)})) == 1


def test_client_limit_is_shared_by_every_server_process(
    stack_env, redis_cache, redis_broker, integration_root, make_client
):
    """A per-client limit of 10/m holds across two gunicorn masters (four processes)."""
    from tests.support.servers import WebServer, running

    env = stack_env(
        cache=redis_cache.url + "/2",  # its own counters: the limit is global to the server
        broker=redis_broker.url + "/0",
        OTP_CLIENT_RATE_LIMITS="10/m",
    )
    webs = [WebServer(env, integration_root, name=f"limited-{n}") for n in "ab"]
    with running(*webs):
        for web in webs:
            web.start()
        client = make_client()
        phones = [new_phone() for _ in range(30)]
        answers = concurrently(
            [lambda i=i, p=p: send_sms(webs[i % 2].url, client, p) for i, p in enumerate(phones)]
        )
    outcomes = collections.Counter((a.status, a.error) for a in answers)
    assert outcomes == {(200, None): 10, (429, "rate_limit_exceeded"): 20}, outcomes
