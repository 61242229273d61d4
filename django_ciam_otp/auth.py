"""HTTP Basic client authentication per RFC 6749 section 2.3.1, as a DRF authentication class.

The credentials are ``base64(url_encode(client_id) + ":" + url_encode(client_secret))``:
decode base64, split on the first ``:``, then form-url-decode each half, so ids
and secrets may hold ``:``, ``%``, ``+``, spaces and non-ASCII characters.

Failed authentications are throttled per client IP address and per client_id
presented (``AUTH_FAILURE_IP_RATE_LIMITS``, ``AUTH_FAILURE_CLIENT_RATE_LIMITS``).
Failures are counted on django-ratelimit's counters (its public ``get_usage``,
its cache, windows and key hashing). The failure that fills a window also sets
a "blocked until" marker for that IP address or client_id, and every request
reads its two markers in one ``get_many`` before anything else: a caller in
good standing pays one cache round trip (not one or two per rate, as asking
``get_usage`` on every request would cost), and a blocked caller gets 429
before the client is looked up or a secret hashed. Concurrent failures can
each pass the check before the first of them sets the marker; a burst gets at
most its own size in extra attempts, once per window.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from django.conf import settings
from django.db import connections, router
from django.http import HttpRequest
from django.utils import timezone
from django_ratelimit.core import get_usage
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from . import counters, crypto, sql
from .clientip import client_ip
from .conf import otp_settings
from .counters.store import counter_cache
from .exceptions import RateLimitExceeded
from .models import OTPClient

logger = logging.getLogger(__name__)

# Writing last_used_at on every request would turn each read into a write;
# once a minute is plenty for the admin's "last used" column.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)

#: django-ratelimit groups of the failure counters (part of their cache keys).
FAILURE_GROUP_IP = "ciam_otp.auth_failure.ip"
FAILURE_GROUP_CLIENT = "ciam_otp.auth_failure.client"


def parse_basic_credentials(header: bytes) -> tuple[str, str]:
    """``b"Basic <b64>"`` -> ``(client_id, client_secret)``; ``ValueError`` when garbled."""
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != b"basic":
        raise ValueError("not Basic credentials")
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("credentials are not base64 of UTF-8 text") from exc
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise ValueError("credentials have no ':'")
    client_id = unquote_plus(raw_id, errors="strict")
    client_secret = unquote_plus(raw_secret, errors="strict")
    if not client_id or not client_secret:
        raise ValueError("empty client id or secret")
    if "\x00" in client_id or len(client_id) > 255:
        raise ValueError("client id cannot be stored")  # PostgreSQL refuses NUL in text
    return client_id, client_secret


# --- looking the client up: the same work for known and unknown ids -----------------------


def _client_or_decoy(client_id: str) -> OTPClient | None:
    """The client with ``client_id``, else the oldest client (a decoy), else ``None``.

    One statement either way, doing the same index look-ups and returning one
    whole row either way, so a known and an unknown id cost the same: the same
    row decoding, the same model instantiation, then the same secret check. A
    look-up that finds nothing skips all of that: with the ORM's
    ``filter().first()`` an unknown id answered about 20 µs sooner (SQLite and
    PostgreSQL alike), enough to tell known ids from unknown ones over many
    requests (``make bench-timing`` measures it). Only an empty table gives
    ``None``, and then there is nothing to tell apart.
    """
    using = router.db_for_read(OTPClient)
    with connections[using].cursor() as cursor:
        cursor.execute(sql.client_lookup(using, OTPClient), [client_id])
        row = cursor.fetchone()
    # Built as the ORM builds a row (its converters, ``from_db``), without a RawQuerySet's
    # column matching on every request: the same steps for a client and a decoy.
    return None if row is None else sql.returned_instance(using, OTPClient, _FIELDS, row)


#: Every column of a client, in the order ``sql.client_lookup`` selects them.
_FIELDS = tuple(field.name for field in OTPClient._meta.concrete_fields)


def authenticate_client(client_id: str, client_secret: str) -> OTPClient | None:
    """Return the enabled client these credentials belong to, else ``None``.

    Known and unknown ids, right and wrong secrets, enabled and disabled
    clients all run the same steps: one row read, the secret's HMAC under every
    key, one id comparison. ``&`` does not short-circuit, so a disabled client
    is refused only after its secret was checked and timing tells nothing. The
    id is compared here, exactly, whatever the database's collation matched.
    """
    row = _client_or_decoy(client_id)
    if row is None:
        crypto.dummy_secret_check(client_secret)
        return None
    is_it = crypto.constant_time_equals(row.client_id, client_id)
    if not (is_it & row.check_secret(client_secret) & row.enabled):
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        OTPClient.objects.touch_last_used(row.pk, now)
        row.last_used_at = now
    return row


# --- the failure throttle ---------------------------------------------------------------------


def _constant(value: str) -> Callable[[str, HttpRequest], str]:
    """A django-ratelimit ``key`` callable that always gives ``value``."""
    return lambda _group, _request: value


@dataclass(frozen=True)
class _Subject:
    """One thing whose failures are counted: an IP address, or a client_id."""

    group: str
    #: Keyed hash of the address or id: neither reaches the cache in the clear.
    ident: str
    rates: tuple[str, ...]

    @property
    def marker(self) -> str:
        prefix = getattr(settings, "RATELIMIT_CACHE_PREFIX", "rl:")
        return f"{prefix}{self.group}.blocked:{self.ident}"


class FailureThrottle:
    """The failure counters of one request: its IP address and, when it names one, its client_id.

    Fails open: when the cache is down (or this process's circuit breaker in
    :mod:`.ratelimits` says so), nothing is checked or counted and a warning
    is logged. Unlike the send limits this one is a second line of defence
    (secrets have 256 bits), and failing closed would take the whole API down
    with the cache.
    """

    def __init__(self, request: HttpRequest, client_id: str | None) -> None:
        self.request = request
        self.subjects: list[_Subject] = []
        if not getattr(settings, "RATELIMIT_ENABLE", True):
            return
        ip_rates: Sequence[str] = otp_settings.AUTH_FAILURE_IP_RATE_LIMITS or ()
        client_rates: Sequence[str] = otp_settings.AUTH_FAILURE_CLIENT_RATE_LIMITS or ()
        if ip_rates:
            self._add(FAILURE_GROUP_IP, f"ip:{client_ip(request)}", ip_rates)
        if client_id is not None and client_rates:
            self._add(FAILURE_GROUP_CLIENT, f"client:{client_id}", client_rates)

    def _add(self, group: str, value: str, rates: Sequence[str]) -> None:
        ident = crypto.keyed_hash(crypto.PURPOSE_AUTH_FAILURE, value)
        self.subjects.append(_Subject(group, ident, tuple(rates)))

    def _cache_usable(self) -> bool:
        if counters.cache_is_down():
            logger.warning("authentication throttle skipped: cache unavailable")
            return False
        return True

    def check(self) -> None:
        """Raise ``RateLimitExceeded`` (429) while the IP or the client_id is blocked."""
        if not self.subjects or not self._cache_usable():
            return
        try:
            found = counter_cache().get_many([subject.marker for subject in self.subjects])
        except Exception as exc:  # noqa: BLE001 - cache clients raise many types for "down"
            counters.trip_breaker()
            logger.warning("authentication throttle skipped: cache unavailable (%s)", exc)
            return
        until = max((v for v in found.values() if isinstance(v, int | float)), default=0)
        now = time.time()
        if until > now:
            raise RateLimitExceeded(
                retry_after=math.ceil(until - now),
                description="Too many failed client authentications. Try again later.",
            )

    def record_failure(self) -> None:
        """Count one failure for each subject; block those whose window just filled up."""
        if not self.subjects or not self._cache_usable():
            return
        try:
            for subject in self.subjects:
                self._count(subject)
        except Exception as exc:  # noqa: BLE001 - see check()
            counters.trip_breaker()
            logger.warning("authentication failure not counted: cache unavailable (%s)", exc)

    def _count(self, subject: _Subject) -> None:
        wait = 0
        for rate in subject.rates:
            usage = get_usage(
                self.request,
                group=subject.group,
                key=_constant(subject.ident),
                rate=rate,
                increment=True,
            )
            if usage is None:  # RATELIMIT_ENABLE turned off meanwhile
                continue
            if usage["limit"] == 0 and usage["time_left"] == -1:
                raise counters.CacheUnavailable("cache refused the counter")
            if usage["count"] >= usage["limit"]:
                # The window still holds during its last second (see counters.wait_for).
                wait = max(wait, int(usage["time_left"]) + 1)
        if wait:
            until = int(time.time()) + wait
            counter_cache().set(subject.marker, until, timeout=wait + 1)


class BasicClientAuthentication(BaseAuthentication):
    """Authenticates an :class:`OTPClient`; ``request.user`` and ``request.auth`` are the client.

    A caller over its failure limits gets ``RateLimitExceeded``, an ``OTPError``
    rather than a DRF ``APIException``: DRF lets it through ``request.user``
    unchanged, and ``OTPAPIView.handle_exception`` answers it (429 with
    ``Retry-After``) as it answers the same error from a send.
    """

    www_authenticate_realm = "otp"

    def authenticate(self, request: Request) -> tuple[OTPClient, OTPClient] | None:
        header = get_authorization_header(request)
        if not header:
            return None  # DRF then answers 401 via NotAuthenticated
        try:
            credentials: tuple[str, str] | None = parse_basic_credentials(header)
        except ValueError:
            credentials = None
        throttle = FailureThrottle(
            getattr(request, "_request", request),
            credentials[0] if credentials is not None else None,
        )
        throttle.check()
        if credentials is None:
            throttle.record_failure()
            raise AuthenticationFailed("Malformed Basic credentials.", code="invalid_client")
        client = authenticate_client(*credentials)
        if client is None:
            throttle.record_failure()
            raise AuthenticationFailed("Client authentication failed.", code="invalid_client")
        return client, client

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{self.www_authenticate_realm}"'
