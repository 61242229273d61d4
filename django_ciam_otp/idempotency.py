"""``Idempotency-Key`` for ``POST /otp/send`` (IETF httpapi idempotency-key-header draft).

The same key from the same client with the same body within ``IDEMPOTENCY_TTL``
returns the first answer again — the same otp_token, nothing sent twice, no
quota consumed. The same key with another body is refused with 422; a second
request while the first is still being processed gets 409.

Only successful answers are remembered: after an error (a limit, a quota,
503) the key is released, so the client may retry with it once the cause is
gone.

Records live in the rate-limit cache (Redis in production), which must never
hold a token or a recipient in a recoverable form, so a record is named by a
keyed hash of (client, key) and holds, besides a format number and its state:

- ``fp``: the body's fingerprint, an HMAC (``HASH_KEY``, its own purpose) of a
  canonical JSON encoding of (client, key, body). A phone number has so little
  entropy that a plain hash of the body gives it back in seconds; without the
  key this gives nothing, and with the scope inside it equal bodies sent under
  different keys do not even look alike.
- ``answer`` (once done): the status and body of the first answer, sealed with
  the broker envelope's cipher (:func:`crypto.seal`: Fernet, encrypted and
  authenticated), bound inside the seal to its fingerprint, so it opens only
  for this client, key and body, and a broker envelope cannot pass for one.

A record that cannot be read — not in this format (written by an older
version), tampered with or corrupted, its seal not opening — is a miss:
it is logged, deleted and the key is claimed afresh, so that request is
processed like a first one. That loses the at-most-once promise for that key,
but only to someone who can already write to the cache (and so could delete
the record anyway); the alternative, refusing the key until the record
expires, would lock an honest client out of its retry for a whole day. A
record whose fingerprint differs is a different body (422). After
a ``HASH_KEY`` rotation records are named differently, so old ones are simply
not found.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from . import crypto
from .conf import otp_settings
from .counters.store import counter_cache
from .exceptions import OTPError, TemporarilyUnavailable

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
_FORMAT = 2  # records without it (format 1 held the body hash and answer in the clear) are misses
_SEAL_KIND = "idempotency-answer"
_IN_FLIGHT = "in-flight"
_DONE = "done"
_IN_FLIGHT_TTL = 60
_ATTEMPTS = 3


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


def _fingerprint(client_pk: int, key: str, body: dict[str, Any]) -> str:
    """Keyed hash of a canonical encoding of (client, key, body).

    Sorted keys, no spaces, ASCII only (so any text, even a lone surrogate,
    encodes): equal JSON objects give equal fingerprints whatever their order.
    """
    canonical = json.dumps(
        [client_pk, key, body], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return crypto.keyed_hash(crypto.PURPOSE_IDEMPOTENCY_BODY, canonical)


class IdempotentRequest:
    """One request's claim on a key: ``begin`` → (``replay`` or work) → ``complete``/``release``."""

    def __init__(self, client_pk: int, key: str, body: dict[str, Any]) -> None:
        if not _KEY_RE.match(key):
            raise IdempotencyKeyInvalid()
        scope = f"{client_pk}:{key}"
        self.cache_key = "ciam_otp:idem:" + crypto.keyed_hash(crypto.PURPOSE_IDEMPOTENCY, scope)
        self.fingerprint = _fingerprint(client_pk, key, body)

    def begin(self) -> Replay | None:
        """Claim the key; return the stored answer when this is a repeat.

        Raises 422 for another body, 409 while the first request is in flight.
        A record that expired meanwhile or cannot be read is retried (see the
        module docstring); a few rounds lost to concurrent claims answer 409.
        """
        cache = counter_cache()
        for _ in range(_ATTEMPTS):
            try:
                claimed = cache.add(self.cache_key, self._record(_IN_FLIGHT), _IN_FLIGHT_TTL)
                record = None if claimed else cache.get(self.cache_key)
            except Exception as exc:  # noqa: BLE001 - the cache is down: we cannot promise idempotency
                raise TemporarilyUnavailable() from exc
            if claimed:
                return None
            if record is None:  # expired between add and get: try again
                continue
            replay = self._replay(record)
            if replay is not None:
                return replay
            logger.warning("unreadable idempotency record dropped; the request runs afresh")
            try:
                cache.delete(self.cache_key)
            except Exception as exc:  # noqa: BLE001 - as above
                raise TemporarilyUnavailable() from exc
        raise IdempotencyKeyInFlight()

    def complete(self, status: int, body: dict[str, Any]) -> None:
        """Remember the answer, sealed, for ``IDEMPOTENCY_TTL`` seconds."""
        answer = crypto.seal(
            {"kind": _SEAL_KIND, "fp": self.fingerprint, "status": status, "body": body}
        )
        record = self._record(_DONE, answer=answer)
        try:
            counter_cache().set(self.cache_key, record, int(otp_settings.IDEMPOTENCY_TTL))
        except Exception:  # noqa: BLE001 - the answer was given; a lost record only weakens replay
            logger.warning("idempotency record could not be stored (cache unavailable)")

    def release(self) -> None:
        try:
            counter_cache().delete(self.cache_key)
        except Exception:  # noqa: BLE001 - the claim expires by itself after _IN_FLIGHT_TTL
            logger.warning("idempotency claim could not be released (cache unavailable)")

    def _record(self, state: str, **fields: Any) -> dict[str, Any]:
        return {"v": _FORMAT, "state": state, "fp": self.fingerprint, **fields}

    def _replay(self, record: Any) -> Replay | None:
        """The stored answer; ``None`` when the record cannot be read (a miss)."""
        if not isinstance(record, dict) or record.get("v") != _FORMAT:
            return None
        fp = record.get("fp")
        if not isinstance(fp, str):
            return None
        if not crypto.constant_time_equals(fp, self.fingerprint):
            raise IdempotencyKeyReused()
        if record.get("state") == _IN_FLIGHT:
            raise IdempotencyKeyInFlight()
        answer = record.get("answer")
        if record.get("state") != _DONE or not isinstance(answer, str):
            return None
        try:
            opened = crypto.unseal(answer)
        except ValueError:  # not ours: tampered, or sealed under another key
            return None
        if (
            not isinstance(opened, dict)
            or opened.get("kind") != _SEAL_KIND
            or not crypto.constant_time_equals(str(opened.get("fp")), self.fingerprint)
            or not isinstance(opened.get("status"), int)
            or not isinstance(opened.get("body"), dict)
        ):
            return None
        return Replay(status=opened["status"], body=opened["body"])
