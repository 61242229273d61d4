"""Random values, keyed hashes and the sealed envelope that carries a code to the worker.

Why keyed hashes and not Django's password hashers: client secrets, otp_tokens
and codes are random values with enough entropy (or, for codes, a short life
and an attempt limit) that a slow KDF buys nothing but latency. An HMAC with a
server-side key means a leaked table alone reveals nothing and cannot be
brute-forced offline without the key. Comparisons use ``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from .conf import otp_settings

# Purposes keep hashes of different kinds of value apart: a code's hash can
# never be mistaken for a token's even if the raw strings were equal.
PURPOSE_CLIENT_SECRET = "client-secret"
PURPOSE_TOKEN = "otp-token"
PURPOSE_CODE = "otp-code"
PURPOSE_RECIPIENT = "recipient"
PURPOSE_IDEMPOTENCY = "idempotency"
# An Idempotency-Key record's body fingerprint (apart from the record's name above).
PURPOSE_IDEMPOTENCY_BODY = "idempotency-body"
# Who failed client authentication (auth.py): IP addresses and client ids, never raw in the cache.
PURPOSE_AUTH_FAILURE = "auth-failure"

_DUMMY_SECRET_HASH = "0" * 64


def _key_material() -> list[bytes]:
    """Current key first, then fallbacks (for client secrets after a rotation)."""
    primary = otp_settings.HASH_KEY or settings.SECRET_KEY
    keys = [primary, *otp_settings.HASH_KEY_FALLBACKS]
    return [k.encode() if isinstance(k, str) else bytes(k) for k in keys]


@functools.lru_cache(maxsize=64)
def _derive(key: bytes, purpose: str) -> bytes:
    """The key for ``purpose``; cached by (key, purpose), so a new key is simply a new entry."""
    return hmac.new(key, b"django-ciam-otp:" + purpose.encode(), hashlib.sha256).digest()


def keyed_hash(purpose: str, value: str, *, key: bytes | None = None) -> str:
    """Hex HMAC-SHA256 of ``value`` under a key derived for ``purpose``.

    ``value`` is caller text and may hold lone surrogates (JSON ``"\\ud800"``
    decodes to one), which strict UTF-8 cannot encode. ``surrogatepass`` encodes
    them instead of raising, leaves every valid string's bytes (so every stored
    hash) unchanged, and stays one-to-one: a surrogate's bytes are never valid
    UTF-8, so no other string shares them (``surrogateescape`` would collide).
    """
    derived = _derive(key if key is not None else _key_material()[0], purpose)
    return hmac.new(derived, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def hash_matches(purpose: str, value: str, stored_hash: str) -> bool:
    """Constant-time check of ``value`` against ``stored_hash`` under every key."""
    ok = False
    for key in _key_material():
        ok |= hmac.compare_digest(keyed_hash(purpose, value, key=key), stored_hash)
    return ok


def constant_time_equals(a: str, b: str) -> bool:
    """Never raises on caller text (lone surrogates: see :func:`keyed_hash`)."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def dummy_secret_check(value: str) -> None:
    """Spend the same work as a real check, for unknown client ids (no timing oracle)."""
    hash_matches(PURPOSE_CLIENT_SECRET, value, _DUMMY_SECRET_HASH)


# --- random values -----------------------------------------------------------


def new_client_id() -> str:
    """128 random bits, URL-safe, so clients need no URL-encoding."""
    return secrets.token_urlsafe(16)


def new_client_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_otp_token() -> str:
    """256 random bits, URL-safe (the contract asks for at least 128)."""
    return secrets.token_urlsafe(32)


def new_code(length: int) -> str:
    """A decimal code of exactly ``length`` digits from the OS CSPRNG."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def hash_token(token: str) -> str:
    return keyed_hash(PURPOSE_TOKEN, token)


def hash_code(token_hash: str, code: str) -> str:
    """Bind the code's hash to its token so equal codes never share a hash."""
    return keyed_hash(PURPOSE_CODE, f"{token_hash}:{code}")


def hash_recipient(recipient: str) -> str:
    return keyed_hash(PURPOSE_RECIPIENT, recipient)


# --- the envelope a delivery task carries ------------------------------------


def _fernet() -> Fernet:
    return _fernet_for(_derive(_key_material()[0], "broker-envelope"))


@functools.lru_cache(maxsize=8)
def _fernet_for(raw: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(raw))


def seal(payload: dict[str, Any]) -> str:
    """Encrypt and authenticate ``payload`` so the broker never holds a plain code."""
    return _fernet().encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode("ascii")


def unseal(envelope: str, *, ttl: int | None = None) -> dict[str, Any]:
    """Open an envelope from :func:`seal`; raises ``ValueError`` when it is not ours or too old."""
    try:
        data = _fernet().decrypt(envelope.encode("ascii"), ttl=ttl)
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise ValueError("envelope cannot be opened") from exc
    result: dict[str, Any] = json.loads(data)
    return result


# --- masking for logs and the admin --------------------------------------------


def mask_recipient(recipient: str) -> str:
    """``+8613612345678`` -> ``+86136****5678``; ``mike@example.com`` -> ``m***@example.com``."""
    if "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if len(recipient) <= 7:
        return recipient[:2] + "*" * max(0, len(recipient) - 2)
    return recipient[:-8] + "****" + recipient[-4:]
