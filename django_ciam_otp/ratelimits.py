"""Per-recipient, per-client, per-IP and per-prefix limits on django-ratelimit's counters.

django-ratelimit's decorator keys (``post:phone_number``) cannot see a JSON
body, and they would count the raw text rather than the normalised
recipient. So the send flow counts after parsing, with the recipient's keyed
hash as the key: every written form of one number shares one counter and the
cache never holds a plain recipient. The counters are django-ratelimit's own
(its cache keys, windows and values), so its tools and settings
(``RATELIMIT_USE_CACHE``, ``RATELIMIT_ENABLE``, key prefix) apply.

One send is counted by :func:`count_send`, which checks, in the contract's
order, the client and IP limits (429), the recipient's limits (400), a
blocked prefix and the prefix limits (429). When the cache is Redis
(``django-redis`` or Django's own ``RedisCache``), all of it (every rate,
the conversion monitor's counters, the "sent lately" marker that lets a
first send skip superseding older tokens) is one Lua script: one round trip
instead of one or two per rate, and atomic, so a refused request never
shows in a counter even for a moment. Other caches take the same decisions
with ``django_ratelimit.core.get_usage``, one rate at a time.

Rules both paths keep:

* rates are taken shortest window first; a refused request is counted in no
  window of that kind (a burst of refusals must not push the hourly and daily
  counters up and answer with a ``Retry-After`` of hours), and its
  ``Retry-After`` is the longest wait among the windows that are full;
* hits on the caller's counters (client, IP) stay counted when the recipient
  or the prefix refuses: hammering a limited recipient still uses up the
  caller's allowance;
* a send that fails later for a reason that must consume nothing (no quota,
  the broker is down) hands its increments back with :meth:`Charge.refund`.

``retry_after`` is the number of whole seconds after which a resend is
certainly counted in a new window: django-ratelimit's window ``w`` still
holds at second ``w`` and ends at ``w + 1``, so the wait is
``w + 1 - int(now)`` (``time_left + 1``), never the ``time_left`` that
would be refused once more when obeyed to the second.

When the cache does not answer, each process stops asking it for
``BREAKER_SECONDS`` (a circuit breaker): a hung Redis would otherwise cost
every later counter of the request, and of every request after it, a full
socket timeout. Meanwhile sends fail closed (503) or open, as configured.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit.core import (
    EXPIRATION_FUDGE,
    _get_window,
    _make_cache_key,
    _split_rate,
    get_usage,
)

from .clientip import client_ip
from .conf import otp_settings
from .exceptions import (
    EmailRateLimitExceeded,
    RateLimited,
    RateLimitExceeded,
    SMSRateLimitExceeded,
    TemporarilyUnavailable,
)

logger = logging.getLogger(__name__)


#: A recipient's counters are cleared by a verified code at most once in this many seconds.
CLEAR_ONCE_PER = 86400

#: After the cache failed, this process treats it as down for this many seconds.
BREAKER_SECONDS = 2.0
_down_until = 0.0


class CacheUnavailable(Exception):
    """The counter cache did not answer."""


def cache_is_down() -> bool:
    """Whether the cache failed less than ``BREAKER_SECONDS`` ago in this process."""
    return time.monotonic() < _down_until


def trip_breaker() -> None:
    """Record a cache failure: this process leaves the cache alone for ``BREAKER_SECONDS``."""
    global _down_until
    _down_until = time.monotonic() + BREAKER_SECONDS


def reset_breaker(**kwargs: object) -> None:
    """Forget a cache failure (another cache was configured, or a test starts afresh)."""
    global _down_until
    _down_until = 0.0


setting_changed.connect(reset_breaker)


def _cache():  # type: ignore[no-untyped-def]
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def wait_for(window: int) -> int:
    """Whole seconds until django-ratelimit's window ending at ``window`` has surely ended."""
    return max(1, window + 1 - int(time.time()))


# --- Redis: the raw client behind the Django cache ----------------------------------------


@dataclass(frozen=True)
class RedisAccess:
    """The redis-py client behind a Django cache whose integers are plain Redis integers.

    Both ``django_redis.client.DefaultClient`` (and its Sentinel subclass) and
    Django's own ``RedisCache`` store an ``int`` as the number itself, which
    is what makes ``INCR`` in a script and ``cache.incr`` agree. Sharded and
    "herd" clients do not (one key per server, values wrapped), so they take
    the generic path.
    """

    client: Any  # redis.Redis
    make_key: Callable[[str], str]


def redis_access(cache: Any) -> RedisAccess | None:
    """``RedisAccess`` for ``cache``, or ``None`` when it is not a plain Redis cache."""
    backend = type(cache).__module__
    try:
        if backend.startswith("django_redis"):
            from django_redis.client import DefaultClient, HerdClient, ShardClient

            client = cache.client
            if not isinstance(client, DefaultClient) or isinstance(
                client, ShardClient | HerdClient
            ):
                return None
            return RedisAccess(client.get_client(write=True), cache.make_key)
        if backend == "django.core.cache.backends.redis":
            return RedisAccess(cache._cache.get_client(write=True), cache.make_key)
    except ImportError:
        return None
    return None


# Counts one send atomically. KEYS: the rate counters (in check order), the
# counters to bump when every rate passes, the marker, the keys to sum.
# ARGV[1]: integers separated by spaces (one argument: cheaper to encode and
# parse than forty): the number of groups, then per group its phase, its
# number of rates, whether it refuses by itself (a blocked prefix), and per
# rate its limit and key lifetime; then the number of counters and each one's
# lifetime; then the marker's lifetime (0: none); then the number of sums and
# per sum its number of keys; then the number of distinct counts and per count
# its lifetime, its cap and its number of keys (the set to add ARGV[1 + d] to,
# then the sets whose members are counted; a member is added only where it is
# in none of them and they hold fewer than the cap, so they never overlap and
# a refused member is not counted).
# Groups of one phase are looked at in order; the first with a full rate
# refuses and nothing of that phase is counted; otherwise every rate of the
# phase is counted and the next phase is looked at. Returns the refusing
# group (0: none) and each rate's count (after counting it, or as found when
# its phase refused), then (when nothing refused) whether the marker was
# there, the sums and the distinct counts.
_COUNT_SEND = """
local spec, a = {}, 1
for v in string.gmatch(ARGV[1], '%S+') do spec[#spec + 1] = tonumber(v) end
local function arg() local v = spec[a]; a = a + 1; return v end
local groups, k = {}, 0
for g = 1, arg() do
  local phase, n, forced = arg(), arg(), arg()
  local rates = {}
  for r = 1, n do k = k + 1; rates[r] = {k, arg(), arg()} end
  groups[g] = {phase, forced, rates}
end
local counts = {}
for i = 1, k do counts[i] = 0 end
local refused, g = 0, 1
while g <= #groups and refused == 0 do
  local last = g
  while last < #groups and groups[last + 1][1] == groups[g][1] do last = last + 1 end
  for h = g, last do
    local full = groups[h][2] == 1
    for _, rate in ipairs(groups[h][3]) do
      local c = tonumber(redis.call('GET', KEYS[rate[1]]) or '0') or 0
      counts[rate[1]] = c
      if c >= rate[2] then full = true end
    end
    if full then refused = h; break end
  end
  if refused == 0 then
    for h = g, last do
      for _, rate in ipairs(groups[h][3]) do
        local c = redis.call('INCR', KEYS[rate[1]])
        if c == 1 then redis.call('EXPIRE', KEYS[rate[1]], rate[3]) end
        counts[rate[1]] = c
      end
    end
  end
  g = last + 1
end
local result = {refused}
for i = 1, k do result[i + 1] = counts[i] end
if refused ~= 0 then return result end
for c = 1, arg() do
  k = k + 1
  local ttl = arg()
  if redis.call('INCR', KEYS[k]) == 1 then redis.call('EXPIRE', KEYS[k], ttl) end
end
local marker_ttl = arg()
if marker_ttl > 0 then
  k = k + 1
  result[#result + 1] = redis.call('EXISTS', KEYS[k])
  redis.call('SET', KEYS[k], '1', 'EX', marker_ttl)
else
  result[#result + 1] = 1
end
for r = 1, arg() do
  local total = 0
  for i = 1, arg() do
    k = k + 1
    total = total + (tonumber(redis.call('GET', KEYS[k]) or '0') or 0)
  end
  result[#result + 1] = total
end
for d = 1, arg() do
  local ttl, cap, n = arg(), arg(), arg()
  k = k + 1
  local target, member = KEYS[k], ARGV[1 + d]
  local seen, count = false, 0
  for i = 1, n do
    k = k + 1
    if redis.call('SISMEMBER', KEYS[k], member) == 1 then seen = true end
    count = count + redis.call('SCARD', KEYS[k])
  end
  if not seen then
    if count < cap then
      redis.call('SADD', target, member)
      redis.call('EXPIRE', target, ttl)
    end
    count = count + 1
  end
  result[#result + 1] = count
end
return result
"""

# Hands counts back: decrements the counters that still exist (an expired one
# must not come back as -1), like django-redis's own ``decr``.
_REFUND = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
return 0
"""

_scripts: dict[str, Any] = {}


def _run(access: RedisAccess, name: str, keys: list[str], args: list[str]) -> Any:
    """Run a script by its SHA (redis-py loads it on the first NOSCRIPT)."""
    from redis.commands.core import Script

    script = _scripts.get(name)
    if script is None:
        source = _COUNT_SEND if name == "count" else _REFUND
        script = _scripts[name] = Script(access.client, source)
    return script(keys=[access.make_key(k) for k in keys], args=args, client=access.client)


# --- charges --------------------------------------------------------------------------------


@dataclass
class Charge:
    """The counters one send incremented, so they can be handed back."""

    keys: list[str] = field(default_factory=list)
    #: Seconds until the next send to this recipient is allowed (0: now).
    retry_after: int = 0

    def refund(self) -> None:
        refund(self)


def refund(*charges: Charge) -> None:
    """Hand back the counts of ``charges`` (one round trip on Redis); best effort."""
    keys = [key for charge in charges for key in charge.keys]
    for charge in charges:
        charge.keys.clear()
    if not keys:
        return
    if cache_is_down():  # each decr would wait for a timeout; the counters expire anyway
        logger.warning("rate-limit refund skipped: cache unavailable")
        return
    cache = _cache()
    access = redis_access(cache)
    if access is not None:
        try:
            _run(access, "refund", keys, [])
        except Exception:  # noqa: BLE001 - best effort; the counters expire anyway
            trip_breaker()
            logger.warning("rate-limit refund skipped: cache unavailable")
        return
    for key in keys:
        try:
            cache.decr(key)
        except Exception:  # noqa: BLE001 - best effort; the key may have expired
            logger.debug("rate-limit refund skipped for one counter")


# --- one send, all limits ---------------------------------------------------------------------


@dataclass(frozen=True)
class Counter:
    """A plain cache counter bumped with a send (the conversion monitor's), or the marker."""

    key: str
    timeout: int


@dataclass(frozen=True)
class Distinct:
    """Count ``member`` among the members of the sets ``union`` (Redis).

    The count includes ``member``. It is added to the set ``key`` (one of
    ``union``) only if it is in none of them and they hold fewer than ``cap``:
    a count above ``cap`` means "refuse", and the refused member stays out.
    """

    key: str
    member: str
    timeout: int
    cap: int
    union: tuple[str, ...]


@dataclass(frozen=True)
class _Rate:
    rate: str
    limit: int
    window: int
    key: str
    timeout: int


@dataclass
class _Group:
    name: str
    value: str
    rates: list[_Rate]
    phase: int
    error: Callable[[int], RateLimited]
    forced: RateLimited | None = None  # refuses by itself (a blocked prefix)


@dataclass
class SendCharge:
    """What :func:`count_send` counted for one send that passed every limit."""

    #: The client's and the IP's hits: handed back only when nothing is consumed (503).
    caller: Charge
    #: The recipient's and the prefix's hits (and, on Redis, the monitor's
    #: counters): handed back when nothing is sent (no quota, 503).
    recipient: Charge
    #: The sums asked for in ``sums``, after counting; ``None`` when the extras
    #: were not counted here (not Redis, or the cache was skipped), so the
    #: caller counts them itself.
    sums: list[int] | None = None
    #: False when the marker proves no send of it within its lifetime.
    marker_was_set: bool = True
    #: The counts asked for in ``distinct``, after adding; ``None`` as for ``sums``.
    distinct: list[int] | None = None

    @property
    def retry_after(self) -> int:
        return self.recipient.retry_after

    def refund_all(self) -> None:
        refund(self.caller, self.recipient)


@functools.lru_cache(maxsize=64)
def _parsed(rates: tuple[str, ...]) -> tuple[tuple[str, int, int], ...]:
    """``("5/h", "1/30s")`` -> ``(("1/30s", 1, 30), ("5/h", 5, 3600))``: shortest window first."""
    return tuple(sorted(((r, *_split_rate(r)) for r in rates), key=lambda parsed: parsed[2]))


def _rates(group: str, value: str, rates: Iterable[str]) -> list[_Rate]:
    """django-ratelimit's view of ``rates`` for ``value``, shortest window first."""
    found = []
    for rate, limit, period in _parsed(tuple(rates)):
        window = _get_window(value, period)
        key = _make_cache_key(group, window, rate, value, ALL)
        found.append(_Rate(rate, limit, window, key, period + EXPIRATION_FUDGE))
    return found


def _groups(
    request: HttpRequest | None,
    client_pk: int,
    channel: str,
    recipient_hash: str,
    usage: str,
    prefix: str | None,
    blocked: RateLimited | None,
    caller_only: bool = False,
) -> list[_Group]:
    """The limits of one send in the contract's order; phase 1 is the caller's."""

    def too_many(wait: int) -> RateLimited:
        return RateLimitExceeded(retry_after=wait)

    def recipient_error(wait: int) -> RateLimited:
        error = SMSRateLimitExceeded if channel == "sms" else EmailRateLimitExceeded
        return error(retry_after=wait)

    def prefix_error(wait: int) -> RateLimited:
        return RateLimitExceeded(
            retry_after=wait,
            description="Too many codes to numbers like this one. Try again later.",
        )

    enabled = getattr(settings, "RATELIMIT_ENABLE", True)

    def rates(group: str, value: str, configured: Iterable[str] | None) -> list[_Rate]:
        return _rates(group, value, configured or ()) if enabled else []

    value = str(client_pk)
    groups = [
        _Group(
            "ciam_otp.client",
            value,
            rates("ciam_otp.client", value, otp_settings.CLIENT_RATE_LIMITS),
            1,
            too_many,
        )
    ]
    if request is not None and otp_settings.IP_RATE_LIMITS and enabled:
        ip = client_ip(request)
        ip_rates = rates("ciam_otp.ip", ip, otp_settings.IP_RATE_LIMITS)
        groups.append(_Group("ciam_otp.ip", ip, ip_rates, 1, too_many))
    configured = (
        otp_settings.SMS_RATE_LIMITS if channel == "sms" else otp_settings.EMAIL_RATE_LIMITS
    )
    if caller_only:
        return groups
    value = recipient_value(recipient_hash, usage)
    group = f"ciam_otp.{channel}"
    groups.append(_Group(group, value, rates(group, value, configured), 2, recipient_error))
    shared = client_share(configured or ())
    if shared:
        value = f"{client_pk}:{value}"
        group = f"ciam_otp.{channel}.client"
        groups.append(_Group(group, value, rates(group, value, shared), 2, recipient_error))
    if prefix is not None:
        if blocked is not None:
            groups.append(_Group("blocked", prefix, [], 2, too_many, forced=blocked))
        groups.append(
            _Group(
                "ciam_otp.prefix",
                prefix,
                rates("ciam_otp.prefix", prefix, otp_settings.PREFIX_RATE_LIMITS),
                2,
                prefix_error,
            )
        )
    return groups


def recipient_value(recipient_hash: str, usage: str) -> str:
    """The per-recipient counters' key value (per usage unless ``RATE_LIMIT_PER_USAGE`` is off)."""
    return f"{recipient_hash}:{usage}" if otp_settings.RATE_LIMIT_PER_USAGE else recipient_hash


def client_share(rates: Iterable[str]) -> list[str]:
    """One client's share of the per-recipient ``rates`` (``RECIPIENT_SHARE_PER_CLIENT``).

    ``"5/h"`` with a share of 0.5 is ``"3/3600s"`` (rounded up, at least 1):
    no client can use up a person's whole allowance. Empty at a share of 1.
    """
    share = float(otp_settings.RECIPIENT_SHARE_PER_CLIENT)
    if share >= 1:
        return []
    return [
        f"{max(1, math.ceil(limit * share))}/{period}s"
        for _, limit, period in _parsed(tuple(rates))
    ]


def count_caller(request: HttpRequest | None, *, client_pk: int) -> Charge:
    """Count one request against the client's and the IP's limits only, or raise 429.

    For answers that send nothing but still tell the caller something
    (``email_is_used`` / ``phone_number_is_used``): they cost the caller the
    same as a send, so the is-used check is no free oracle.
    """
    charge = count_send(
        request, client_pk=client_pk, channel="", recipient_hash="", usage="", caller_only=True
    )
    return charge.caller


def clear_recipient(
    channel: str, recipient_hash: str, usage: str, client_pk: int | None = None
) -> None:
    """Forget the recipient's send counters for ``usage`` (a code to them was just verified).

    The person is who the limits protect: once they proved the address, the
    sends others (another client, a stranger on the site's pages) spent on it
    must not keep them from their next code. Once a day per recipient and
    usage: whoever receives the codes can verify them, and clearing on every
    verification would let them have codes sent without limit (SMS pumping
    with numbers that do verify). Best effort.
    """
    configured = (
        otp_settings.SMS_RATE_LIMITS if channel == "sms" else otp_settings.EMAIL_RATE_LIMITS
    )
    if not configured or cache_is_down() or not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    value = recipient_value(recipient_hash, usage)
    keys = [r.key for r in _rates(f"ciam_otp.{channel}", value, configured)]
    shared = client_share(configured)
    if shared and client_pk is not None:
        owned = f"{client_pk}:{value}"
        keys += [r.key for r in _rates(f"ciam_otp.{channel}.client", owned, shared)]
    try:
        cache = _cache()
        if not cache.add(f"ciam_otp:cleared:{channel}:{value}", 1, CLEAR_ONCE_PER):
            return  # cleared once today already
        cache.delete_many(keys)
    except Exception as exc:  # noqa: BLE001 - the counters expire anyway
        trip_breaker()
        logger.warning("could not clear a recipient's counters (%s)", type(exc).__name__)


def count_send(
    request: HttpRequest | None,
    *,
    client_pk: int,
    channel: str,
    recipient_hash: str,
    usage: str,
    prefix: str | None = None,
    blocked: RateLimited | None = None,
    counters: Sequence[Counter] = (),
    sums: Sequence[Sequence[str]] = (),
    marker: Counter | None = None,
    distinct: Sequence[Distinct] = (),
    caller_only: bool = False,
) -> SendCharge:
    """Count one send against every limit, in the contract's order, or raise the refusal.

    ``prefix`` (SMS only) adds the prefix limits, and ``blocked`` (the
    conversion monitor's refusal for that prefix) is raised in its place in
    the order, after the recipient's limits. On Redis, ``counters`` are bumped
    (and handed back with the recipient's hits), each of ``sums`` (groups of
    counter keys) added up, ``marker`` set and each of ``distinct`` added to
    and counted, all when every limit passed, in the same round trip.
    """
    groups = _groups(
        request, client_pk, channel, recipient_hash, usage, prefix, blocked, caller_only
    )
    if cache_is_down():
        return _cache_failed(groups)
    cache = _cache()
    access = redis_access(cache)
    if access is None:
        return _count_one_by_one(request, groups)
    if (
        not any(g.rates for g in groups)
        and not counters
        and not sums
        and marker is None
        and not distinct
    ):
        return _finish_without_cache(groups)
    keys: list[str] = []
    args: list[int] = [len(groups)]
    for group in groups:
        args += [group.phase, len(group.rates), 1 if group.forced is not None else 0]
        for rate in group.rates:
            keys.append(rate.key)
            args += [rate.limit, rate.timeout]
    keys += [c.key for c in counters]
    args += [len(counters), *(c.timeout for c in counters)]
    if marker is not None:
        keys.append(marker.key)
    args.append(marker.timeout if marker is not None else 0)
    args.append(len(sums))
    for keys_to_sum in sums:
        keys += keys_to_sum
        args.append(len(keys_to_sum))
    args.append(len(distinct))
    for count in distinct:
        keys += [count.key, *count.union]
        args += [count.timeout, count.cap, len(count.union)]
    members = [count.member for count in distinct]
    try:
        spec = " ".join(map(str, args))
        result = [int(v) for v in _run(access, "count", keys, [spec, *members])]
    except Exception as exc:  # noqa: BLE001 - redis-py raises many types for "down"
        trip_breaker()
        logger.error("rate-limit cache unavailable (%s)", type(exc).__name__)
        return _cache_failed(groups)

    refused, counts = result[0], result[1:]
    position = 0
    charge = SendCharge(Charge(), Charge())
    for number, group in enumerate(groups, start=1):
        found = counts[position : position + len(group.rates)]
        position += len(group.rates)
        if number == refused:
            if group.forced is not None:
                raise group.forced
            full = zip(group.rates, found, strict=True)
            raise group.error(max(wait_for(r.window) for r, c in full if c >= r.limit))
        target = charge.caller if group.phase == 1 else charge.recipient
        target.keys += [r.key for r in group.rates]
        if group.phase == 2:
            for rate, count in zip(group.rates, found, strict=True):
                if count >= rate.limit:
                    target.retry_after = max(target.retry_after, wait_for(rate.window))
    charge.recipient.keys += [c.key for c in counters]
    rest = result[1 + position :]
    charge.marker_was_set = bool(rest[0])
    charge.sums = rest[1 : 1 + len(sums)]
    charge.distinct = rest[1 + len(sums) :]
    return charge


def _finish_without_cache(groups: list[_Group]) -> SendCharge:
    """No counter to touch: only a blocked prefix can refuse."""
    for group in groups:
        if group.forced is not None:
            raise group.forced
    return SendCharge(Charge(), Charge(), sums=[], marker_was_set=True)


def _cache_failed(groups: list[_Group]) -> SendCharge:
    """The cache is down: refuse with 503 (fail closed) or let the send through uncounted."""
    counting = any(g.rates for g in groups)
    if counting and not otp_settings.RATE_LIMIT_FAIL_OPEN:
        logger.error("rate-limit cache unavailable; refusing the request (fail closed)")
        raise TemporarilyUnavailable()
    if counting:
        logger.warning("rate-limit cache unavailable; failing open")
    for group in groups:
        if group.forced is not None:  # known without the cache
            raise group.forced
    return SendCharge(Charge(), Charge(), sums=None, marker_was_set=True)


def _count_one_by_one(request: HttpRequest | None, groups: list[_Group]) -> SendCharge:
    """Any other cache: the same decisions, one ``get_usage`` call per rate."""
    req = request if request is not None else HttpRequest()
    charge = SendCharge(Charge(), Charge(), sums=None, marker_was_set=True)
    for group in groups:
        target = charge.caller if group.phase == 1 else charge.recipient
        if group.forced is not None:
            target.refund()
            raise group.forced
        wait = _guarded(req, group.name, group.value, [r.rate for r in group.rates], target)
        if wait is not None:
            target.refund()
            raise group.error(wait)
    return charge


def _hit(
    request: HttpRequest, group: str, value: str, rates: Iterable[str], charge: Charge
) -> int | None:
    """Count one hit against the rates; return the seconds to wait if any is exceeded.

    Rates are taken shortest window first, and once one refuses, the longer
    ones are only looked at, not counted. Otherwise a burst of refused requests
    (20 sends at once to one number) would push the hourly and daily counters
    up until each refusal is handed back, and the burst would be answered with
    a ``Retry-After`` of hours instead of the 30 seconds that actually apply.
    """
    wait: int | None = None
    for rate in sorted(rates, key=lambda r: _split_rate(r)[1]):
        try:
            usage = get_usage(
                request, group=group, key=lambda _g, _r: value, rate=rate, increment=wait is None
            )
        except Exception as exc:  # noqa: BLE001 - django-redis raises its client's errors
            trip_breaker()
            raise CacheUnavailable(str(type(exc).__name__)) from exc
        if usage is None:  # RATELIMIT_ENABLE = False
            continue
        if usage["limit"] == 0 and usage["time_left"] == -1:
            raise CacheUnavailable("cache refused the counter")
        # The window still holds during its last second (see the module's docstring).
        time_left = max(1, int(usage["time_left"]) + 1)
        if wait is not None:  # only looking: would this rate refuse too, and for longer?
            if usage["count"] >= usage["limit"]:
                wait = max(wait, time_left)
            continue
        _, period = _split_rate(rate)
        charge.keys.append(_make_cache_key(group, _get_window(value, period), rate, value, ALL))
        if usage["should_limit"]:
            wait = time_left
        elif usage["count"] >= usage["limit"]:
            charge.retry_after = max(charge.retry_after, time_left)
    return wait


def _guarded(
    request: HttpRequest, group: str, value: str, rates: Iterable[str], charge: Charge
) -> int | None:
    """Count one hit into ``charge``; on refusal or cache failure hand this hit back."""
    rates = list(rates)
    if not rates:
        return None
    local = Charge()
    try:
        if cache_is_down():
            raise CacheUnavailable("circuit breaker open")
        wait = _hit(request, group, value, rates, local)
    except CacheUnavailable:
        local.refund()
        if otp_settings.RATE_LIMIT_FAIL_OPEN:
            logger.warning("rate-limit cache unavailable; failing open for %s", group)
            return None
        charge.refund()
        logger.error("rate-limit cache unavailable; refusing the request (fail closed)")
        raise TemporarilyUnavailable() from None
    if wait is not None:
        local.refund()
        return wait
    charge.keys.extend(local.keys)
    charge.retry_after = max(charge.retry_after, local.retry_after)
    return None


# --- one limit at a time (the generic path's parts, kept for callers of the old API) ----------


def check_client_and_ip(request: HttpRequest | None, client_pk: int, charge: Charge) -> None:
    """Raise ``RateLimitExceeded`` (429) when the client or the caller's IP is over its limits."""
    req = request if request is not None else HttpRequest()
    wait = _guarded(req, "ciam_otp.client", str(client_pk), otp_settings.CLIENT_RATE_LIMITS, charge)
    if wait is None and request is not None and otp_settings.IP_RATE_LIMITS:
        ip = client_ip(request)
        wait = _guarded(request, "ciam_otp.ip", ip, otp_settings.IP_RATE_LIMITS, charge)
    if wait is not None:
        charge.refund()
        raise RateLimitExceeded(retry_after=wait)


def check_recipient(
    request: HttpRequest | None, channel: str, recipient_hash: str, usage: str, charge: Charge
) -> None:
    """Raise the channel's ``*_rate_limit_exceeded`` when the recipient is over its limits.

    Hits already in ``charge`` (client, IP) stay counted: a caller hammering a
    limited recipient still uses up its own allowance.
    """
    rates = otp_settings.SMS_RATE_LIMITS if channel == "sms" else otp_settings.EMAIL_RATE_LIMITS
    value = f"{recipient_hash}:{usage}" if otp_settings.RATE_LIMIT_PER_USAGE else recipient_hash
    # Retry-after reported on success is about this recipient only.
    own = Charge()
    wait = _guarded(request or HttpRequest(), f"ciam_otp.{channel}", value, rates or (), own)
    if wait is not None:
        error: type[RateLimited] = (
            SMSRateLimitExceeded if channel == "sms" else EmailRateLimitExceeded
        )
        raise error(retry_after=wait)
    charge.keys.extend(own.keys)
    charge.retry_after = own.retry_after


def check_prefix(request: HttpRequest | None, prefix: str, charge: Charge) -> None:
    """Raise ``RateLimitExceeded`` (429) when numbers sharing ``prefix`` got too many codes."""
    wait = _guarded(
        request or HttpRequest(), "ciam_otp.prefix", prefix, otp_settings.PREFIX_RATE_LIMITS, charge
    )
    if wait is not None:
        raise RateLimitExceeded(
            retry_after=wait,
            description="Too many codes to numbers like this one. Try again later.",
        )


def parse_rates(text: str) -> list[str]:
    """``"1/30s,5/h"`` -> ``["1/30s", "5/h"]``; an empty string means no limits."""
    return [part.strip() for part in text.split(",") if part.strip()]
