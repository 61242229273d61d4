"""``Idempotency-Key`` for ``POST /otp/send`` (IETF httpapi idempotency-key-header draft).

The same key from the same client with the same body within ``IDEMPOTENCY_TTL``
returns the first answer again — the same otp_token, nothing sent twice, no
quota consumed. The same key with another body is refused with 422; a second
request while the first is still being processed gets 409.

Only successful answers are remembered: after an error (a limit, a quota,
503) the key is released, so the client may retry with it once the cause is
gone. Records live in the rate-limit cache (Redis in production) and hold a
hash of the body, the status and the answer — an otp_token, never a code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches

from . import crypto
from .conf import otp_settings
from .exceptions import OTPError, TemporarilyUnavailable

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
_IN_FLIGHT = "in-flight"
_IN_FLIGHT_TTL = 60


class IdempotencyKeyInvalid(OTPError):
    code = "invalid_request"
    default_description = "Idempotency-Key must be 1 to 255 printable ASCII characters."


class IdempotencyKeyReused(OTPError):
    code = "invalid_request"
    status = 422
    default_description = "This Idempotency-Key was already used with a different request body."


class IdempotencyKeyInFlight(OTPError):
    code = "invalid_request"
    status = 409
    default_description = "A request with this Idempotency-Key is still being processed."


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def _cache():  # type: ignore[no-untyped-def]
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotentRequest:
    """One request's claim on a key: ``begin`` → (``replay`` or work) → ``complete``/``release``."""

    def __init__(self, client_pk: int, key: str, body: dict[str, Any]) -> None:
        if not _KEY_RE.match(key):
            raise IdempotencyKeyInvalid()
        scope = f"{client_pk}:{key}"
        self.cache_key = "ciam_otp:idem:" + crypto.keyed_hash(crypto.PURPOSE_IDEMPOTENCY, scope)
        self.fingerprint = _fingerprint(body)

    def begin(self) -> Replay | None:
        """Claim the key; return the stored answer when this is a repeat."""
        cache = _cache()
        try:
            claimed = cache.add(
                self.cache_key, {"state": _IN_FLIGHT, "fp": self.fingerprint}, _IN_FLIGHT_TTL
            )
            record = None if claimed else cache.get(self.cache_key)
        except Exception as exc:  # noqa: BLE001 - the cache is down: we cannot promise idempotency
            raise TemporarilyUnavailable() from exc
        if claimed:
            return None
        if record is None:  # expired between add and get: try once more
            return self.begin()
        if record.get("fp") != self.fingerprint:
            raise IdempotencyKeyReused()
        if record.get("state") == _IN_FLIGHT:
            raise IdempotencyKeyInFlight()
        return Replay(status=int(record["status"]), body=dict(record["body"]))

    def complete(self, status: int, body: dict[str, Any]) -> None:
        record = {"state": "done", "fp": self.fingerprint, "status": status, "body": body}
        try:
            _cache().set(self.cache_key, record, int(otp_settings.IDEMPOTENCY_TTL))
        except Exception:  # noqa: BLE001 - the answer was given; a lost record only weakens replay
            logger.warning("idempotency record could not be stored (cache unavailable)")

    def release(self) -> None:
        try:
            _cache().delete(self.cache_key)
        except Exception:  # noqa: BLE001 - the claim expires by itself after _IN_FLIGHT_TTL
            logger.warning("idempotency claim could not be released (cache unavailable)")
