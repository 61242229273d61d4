"""Idempotency-Key records: what the cache holds, replay, and records that cannot be read.

The outside review recovered a phone number from a record in 40 s (an unkeyed
SHA-256 of the body) and read the otp_token in the clear. These tests read the
raw cache entry and look for every form of both.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches

from django_ciam_otp import crypto
from django_ciam_otp.idempotency import IdempotentRequest

pytestmark = pytest.mark.django_db

PHONE = "13612345678"
TYPED = "+86 136-1234-5678"
E164 = "+8613612345678"
EMAIL = "Mock.User@Example.com"


@pytest.fixture
def open_limits(settings):
    """No per-recipient limit, so a request treated as a miss can really send again."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": [], "EMAIL_RATE_LIMITS": []}


def cache():  # type: ignore[no-untyped-def]
    return caches[getattr(django_settings, "RATELIMIT_USE_CACHE", "default")]


def raw_entry(cache_key: str) -> bytes:
    """The bytes the cache holds for ``cache_key`` (LocMemCache keeps values pickled)."""
    backend = cache()
    return backend._cache[backend.make_key(cache_key)]


def record_of(api_client: Any, key: str, body: dict[str, Any]) -> IdempotentRequest:
    return IdempotentRequest(api_client.client.pk, key, body)


def old_fingerprints(body: dict[str, Any], posted: str) -> set[str]:
    """Unkeyed SHA-256 of the body, every way it was (or could have been) computed."""
    forms = {
        posted,
        json.dumps(body),
        json.dumps(body, sort_keys=True),
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True),
    }
    return {hashlib.sha256(form.encode()).hexdigest() for form in forms}


def forms_of(text: str) -> set[bytes]:
    """``text`` as it could sit in a pickle or a repr."""
    return {
        text.encode(),
        text.encode("utf-16-le"),
        json.dumps(text).encode(),
        repr(text).encode(),
    }


@pytest.mark.parametrize(
    ("body", "secrets"),
    [
        ({"usage": "signup", "phone_number": PHONE}, [PHONE, E164, "8613612345678"]),
        ({"usage": "signup", "phone_number": TYPED}, [TYPED, E164, PHONE, "13612345678"]),
        (
            {"usage": "signup", "email": EMAIL},
            [EMAIL, EMAIL.lower(), "Mock.User", "mock.user"],
        ),
    ],
)
def test_record_holds_no_token_no_recipient_no_plain_hash(api, api_client, body, secrets):
    posted = json.dumps(body)
    response = api.send(posted, auth=api_client, HTTP_IDEMPOTENCY_KEY="look-inside")
    assert response.status_code == 200, response.content
    token = response.json()["otp_token"]

    raw = raw_entry(record_of(api_client, "look-inside", body).cache_key)
    record = pickle.loads(raw)  # noqa: S301 - our own test cache
    views = [raw, str(record).encode(), repr(record).encode()]
    needles: set[bytes] = set()
    for text in [token, *secrets]:
        needles |= forms_of(text)
    for digest in old_fingerprints(body, posted):
        needles |= forms_of(digest)
    for view in views:
        for needle in needles:
            assert needle not in view, (needle, view)
    # What it does hold: a keyed fingerprint and a sealed answer.
    assert record["state"] == "done"
    assert record["fp"] != hashlib.sha256(posted.encode()).hexdigest()
    assert set(record) == {"v", "state", "fp", "answer"}


def test_fingerprint_is_keyed(api_client, settings):
    """Another HASH_KEY gives another fingerprint: without the key, nothing to brute-force."""
    body = {"usage": "signup", "phone_number": PHONE}
    first = record_of(api_client, "k", body).fingerprint
    settings.CIAM_OTP = {**settings.CIAM_OTP, "HASH_KEY": "another-key"}
    assert record_of(api_client, "k", body).fingerprint != first


def test_fingerprint_is_canonical_and_scoped(api_client, client_factory):
    body = {"usage": "signup", "phone_number": PHONE}
    same = record_of(api_client, "k", {"phone_number": PHONE, "usage": "signup"})
    assert record_of(api_client, "k", body).fingerprint == same.fingerprint
    # Equal bodies under other keys or clients do not look alike in the cache.
    assert record_of(api_client, "k2", body).fingerprint != same.fingerprint
    other = client_factory()
    assert IdempotentRequest(other.client.pk, "k", body).fingerprint != same.fingerprint


def test_fingerprint_purpose_is_its_own():
    assert crypto.PURPOSE_IDEMPOTENCY_BODY != crypto.PURPOSE_IDEMPOTENCY


def test_replay_returns_the_same_token(api, api_client, sms_outbox):
    body = {"usage": "signup", "phone_number": PHONE}
    first = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="again")
    again = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="again")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert len(sms_outbox) == 1


def test_other_body_is_422(api, api_client):
    api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client, HTTP_IDEMPOTENCY_KEY="o")
    response = api.send(
        {"usage": "signup", "phone_number": "13912345678"},
        auth=api_client,
        HTTP_IDEMPOTENCY_KEY="o",
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_in_flight_is_409_and_holds_no_recipient(api, api_client):
    body = {"usage": "signup", "phone_number": PHONE}
    claim = record_of(api_client, "busy", body)
    assert claim.begin() is None
    raw = raw_entry(claim.cache_key)
    for needle in forms_of(PHONE) | forms_of(E164):
        assert needle not in raw
    response = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="busy")
    assert response.status_code == 409
    assert response.json()["error"] == "invalid_request"


def _tamper_answer(record: dict[str, Any]) -> dict[str, Any]:
    answer = record["answer"]
    flipped = answer[:20] + ("A" if answer[20] != "A" else "B") + answer[21:]
    return {**record, "answer": flipped}


def _envelope_as_answer(record: dict[str, Any]) -> dict[str, Any]:
    """A broker envelope (same cipher) moved into the record: must not open as an answer."""
    return {**record, "answer": crypto.seal({"h": "0" * 16, "c": "123456", "r": E164})}


def _answer_of_other_record(record: dict[str, Any]) -> dict[str, Any]:
    """A valid answer sealed for another fingerprint (another client, key or body)."""
    sealed = crypto.seal(
        {"kind": "idempotency-answer", "fp": "0" * 64, "status": 200, "body": {"otp_token": "x"}}
    )
    return {**record, "answer": sealed}


@pytest.mark.parametrize(
    "tamper",
    [
        _tamper_answer,
        _envelope_as_answer,
        _answer_of_other_record,
        lambda record: {**record, "answer": "not a seal"},
        lambda record: {**record, "answer": 42},
        lambda record: {k: v for k, v in record.items() if k != "answer"},
        lambda record: {k: v for k, v in record.items() if k != "v"},
        lambda record: {**record, "state": "bogus"},
        lambda record: {**record, "fp": None},
        lambda record: "a string, not a record",
        lambda record: [record],
    ],
    ids=[
        "flipped-byte",
        "broker-envelope",
        "other-records-answer",
        "garbage-answer",
        "answer-not-text",
        "no-answer",
        "old-format",
        "unknown-state",
        "no-fingerprint",
        "not-a-dict",
        "a-list",
    ],
)
def test_unreadable_record_is_a_miss(api, api_client, open_limits, sms_outbox, tamper):
    body = {"usage": "signup", "phone_number": PHONE}
    first = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="t")
    assert first.status_code == 200
    claim = record_of(api_client, "t", body)
    cache().set(claim.cache_key, tamper(cache().get(claim.cache_key)), 600)

    again = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="t")
    assert again.status_code == 200, again.content
    assert again.json()["otp_token"] != first.json()["otp_token"]  # processed afresh
    assert len(sms_outbox) == 2
    # ... and remembered again, in the sealed form.
    third = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="t")
    assert third.json() == again.json()
    assert len(sms_outbox) == 2


@pytest.mark.parametrize("fingerprint", ["0" * 64, "é" * 64])
def test_tampered_fingerprint_is_422_not_500(api, api_client, fingerprint):
    """A fingerprint that does not match is another body: tampering cannot be told apart."""
    body = {"usage": "signup", "phone_number": PHONE}
    api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="fp")
    claim = record_of(api_client, "fp", body)
    cache().set(claim.cache_key, {**cache().get(claim.cache_key), "fp": fingerprint}, 600)
    response = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="fp")
    assert response.status_code == 422


def test_record_that_keeps_coming_back_unreadable_is_409(api_client, monkeypatch):
    """Bounded retries: a cache that keeps handing back junk cannot loop the request."""
    claim = record_of(api_client, "loop", {"usage": "signup", "phone_number": PHONE})
    backend = cache()
    monkeypatch.setattr(backend, "add", lambda *args, **kwargs: False)
    monkeypatch.setattr(backend, "get", lambda *args, **kwargs: "junk")
    from django_ciam_otp.idempotency import IdempotencyKeyInFlight

    with pytest.raises(IdempotencyKeyInFlight):
        claim.begin()
