"""The rate limits of a send: per client, per IP, per recipient (and a client's share), per prefix.

django-ratelimit's decorator keys (``post:phone_number``) cannot see a JSON
body, and they would count the raw text rather than the normalised
recipient. So the send flow counts after parsing, with the recipient's keyed
hash as the value: every written form of one number shares one counter and
the cache never holds a plain recipient (nor a plain IP address). Rates are
written as django-ratelimit writes them, and its settings apply
(``RATELIMIT_USE_CACHE``, ``RATELIMIT_ENABLE``); the counters, windows and
keys are this app's own (``counters/rates.py``).

:func:`send_limits` declares the limits of one send in the contract's order:
the client and the IP (429) in the caller's phase, then the recipient's limits
(400), a blocked prefix and the prefix's limits (429). The send flow puts them
in a ``CountPlan`` with the conversion monitor's counters and the "sent
lately" marker; :func:`count_send` runs it (one atomic round trip on Redis)
and turns the result into the refusal or a :class:`SendCharge`. The plan's
semantics (``counters/plan.py``) keep the rules: shortest window first, a
refused request counted in no window of its phase (its ``Retry-After`` the
longest wait among the windows that are full), the caller's hits kept when the
recipient or the prefix refuses. A send that fails later for a reason that
must consume nothing (no quota, the broker is down) hands its counts back with
:meth:`Charge.refund`.

``retry_after`` is the number of whole seconds after which a resend is
certainly counted in a new window (``counters.wait_for``): never the
``time_left`` that would be refused once more when obeyed to the second.

When the cache does not answer, the counters' breaker leaves it alone for
``BREAKER_SECONDS``; meanwhile sends fail closed (503) or open, as
``RATE_LIMIT_FAIL_OPEN`` says.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest

from . import crypto
from .clientip import client_ip
from .conf import otp_settings
from .counters import (
    CALLER,
    RECIPIENT,
    CacheUnavailable,
    CountPlan,
    CountResult,
    LimitGroup,
    cache_is_down,
    rates_for,
    store,
    wait_for,
)
from .counters.rates import shortest_first
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
    try:
        store.refund(keys)
    except CacheUnavailable:  # the counters expire anyway
        logger.warning("rate-limit refund skipped: cache unavailable")


@dataclass
class SendCharge:
    """What :func:`count_send` counted for one send that passed every limit."""

    #: The client's and the IP's hits: handed back only when nothing is consumed (503).
    caller: Charge
    #: The recipient's and the prefix's hits and the monitor's counters: handed
    #: back when nothing is sent (no quota, 503).
    recipient: Charge
    #: What counting found, read by name (the monitor's sums and distinct counts);
    #: ``None`` when nothing was counted (no counter to touch, or the cache is down).
    result: CountResult | None = None
    #: When the count was sent (``time.monotonic()``): before the cache read anything it
    #: reports, so a lifetime it read (``CountResult.ttl_left``) runs from no earlier.
    asked_at: float = 0.0

    @property
    def retry_after(self) -> int:
        return self.recipient.retry_after

    @property
    def marker_was_set(self) -> bool:
        """False when the "sent lately" marker proves no earlier send within its lifetime."""
        return self.result is None or self.result.marker_was_set

    def refund_all(self) -> None:
        refund(self.caller, self.recipient)


# --- the limits of one send -----------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """One limit group and the refusal it answers with (given the seconds to wait)."""

    group: LimitGroup
    refuse: Callable[[int], RateLimited]


@dataclass(frozen=True)
class SendLimits:
    """The limits of one send, in the contract's order."""

    limits: tuple[Limit, ...]

    @property
    def groups(self) -> tuple[LimitGroup, ...]:
        return tuple(limit.group for limit in self.limits)

    def refusal(self, result: CountResult) -> RateLimited | None:
        """The answer to a count that ``result.refused``: the longest wait among its full rates."""
        for limit in self.limits:
            if limit.group.name == result.refused:
                found = zip(limit.group.rates, result.counts[limit.group.name], strict=True)
                full = [wait_for(rate.window) for rate, count in found if count >= rate.limit]
                return limit.refuse(max(full, default=1))
        return None

    def retry_after(self, result: CountResult) -> int:
        """Seconds until the recipient's limits allow the next send (0: at once)."""
        wait = 0
        for group in self.groups:
            if group.phase == RECIPIENT:
                for rate, count in zip(group.rates, result.counts[group.name], strict=True):
                    if count >= rate.limit:
                        wait = max(wait, wait_for(rate.window))
        return wait

    def forced(self) -> RateLimited | None:
        """A refusal known without the cache (a blocked prefix), if any."""
        for limit in self.limits:
            if limit.group.forced:
                return limit.refuse(0)
        return None


def _too_many(wait: int) -> RateLimited:
    return RateLimitExceeded(retry_after=wait)


def _prefix_refusal(wait: int) -> RateLimited:
    return RateLimitExceeded(
        retry_after=wait, description="Too many codes to numbers like this one. Try again later."
    )


def _recipient_refusal(channel: str) -> Callable[[int], RateLimited]:
    error = SMSRateLimitExceeded if channel == "sms" else EmailRateLimitExceeded
    return lambda wait: error(retry_after=wait)


def _always(error: RateLimited) -> Callable[[int], RateLimited]:
    return lambda wait: error


def send_limits(
    request: HttpRequest | None,
    *,
    client_pk: int,
    channel: str,
    recipient_hash: str,
    usage: str,
    prefix: str | None = None,
    blocked: RateLimited | None = None,
    caller_only: bool = False,
) -> SendLimits:
    """The limits of one send; ``blocked`` (the monitor's refusal of ``prefix``) refuses in
    its place in the order, after the recipient's limits. ``caller_only``: the client's and
    the IP's alone."""
    enabled = getattr(settings, "RATELIMIT_ENABLE", True)

    def limit(
        name: str,
        value: str,
        phase: int,
        rates: Iterable[str] | None,
        refuse: Callable[[int], RateLimited],
    ) -> Limit:
        counted = rates_for(name, value, rates or ()) if enabled else ()
        return Limit(LimitGroup(name, value, phase, counted), refuse)

    found = [limit("client", str(client_pk), CALLER, otp_settings.CLIENT_RATE_LIMITS, _too_many)]
    if request is not None and otp_settings.IP_RATE_LIMITS and enabled:
        found.append(limit("ip", ip_value(request), CALLER, otp_settings.IP_RATE_LIMITS, _too_many))
    if caller_only:
        return SendLimits(tuple(found))
    configured = channel_rates(channel)
    refuse = _recipient_refusal(channel)
    value = recipient_value(recipient_hash, usage)
    found.append(limit(channel, value, RECIPIENT, configured, refuse))
    shared = client_share(configured or ())
    if shared:  # one client's share of the person's allowance, counted apart
        found.append(limit(f"{channel}.client", f"{client_pk}:{value}", RECIPIENT, shared, refuse))
    if prefix is not None:
        if blocked is not None:
            group = LimitGroup("blocked", prefix, RECIPIENT, forced=True)
            found.append(Limit(group, _always(blocked)))
        found.append(
            limit("prefix", prefix, RECIPIENT, otp_settings.PREFIX_RATE_LIMITS, _prefix_refusal)
        )
    return SendLimits(tuple(found))


def channel_rates(channel: str) -> list[str] | None:
    """The configured per-recipient rates of ``channel``."""
    rates: list[str] | None = (
        otp_settings.SMS_RATE_LIMITS if channel == "sms" else otp_settings.EMAIL_RATE_LIMITS
    )
    return rates


def ip_value(request: HttpRequest) -> str:
    """The per-IP counters' value: a keyed hash, so the cache holds no address."""
    return crypto.hash_recipient("ip:" + client_ip(request))[:32]


def recipient_value(recipient_hash: str, usage: str) -> str:
    """The per-recipient counters' value (per usage unless ``RATE_LIMIT_PER_USAGE`` is off)."""
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
        for limit, period in shortest_first(tuple(rates))
    ]


def parse_rates(text: str) -> list[str]:
    """``"1/30s,5/h"`` -> ``["1/30s", "5/h"]``; an empty string means no limits."""
    return [part.strip() for part in text.split(",") if part.strip()]


# --- counting ---------------------------------------------------------------------------------


def count_send(limits: SendLimits, plan: CountPlan) -> SendCharge:
    """Count ``plan`` (whose limit groups are ``limits``'), or raise the refusal.

    A refusal by the caller's phase or the recipient's raises its error (the
    caller's hits stay counted when the recipient's phase refuses); a dead
    cache raises ``TemporarilyUnavailable`` (503) unless ``RATE_LIMIT_FAIL_OPEN``.
    """
    if not plan.touches_the_cache:
        return _uncounted(limits)
    asked_at = time.monotonic()
    try:
        result = store.count(plan)
    except CacheUnavailable:
        if plan.has_rates and not otp_settings.RATE_LIMIT_FAIL_OPEN:
            logger.error("rate-limit cache unavailable; refusing the request (fail closed)")
            raise TemporarilyUnavailable() from None
        if plan.has_rates:
            logger.warning("rate-limit cache unavailable; failing open")
        return _uncounted(limits)
    refused = limits.refusal(result)
    if refused is not None:
        raise refused
    return SendCharge(
        Charge(list(result.caller_keys)),
        Charge(list(result.recipient_keys), limits.retry_after(result)),
        result,
        asked_at,
    )


def _uncounted(limits: SendLimits) -> SendCharge:
    """Nothing counted (nothing to count, or the cache is down): only a blocked prefix refuses."""
    blocked = limits.forced()
    if blocked is not None:
        raise blocked
    return SendCharge(Charge(), Charge())


def count_caller(request: HttpRequest | None, *, client_pk: int) -> Charge:
    """Count one request against the client's and the IP's limits only, or raise 429.

    For answers that send nothing but still tell the caller something
    (``email_is_used`` / ``phone_number_is_used``): they cost the caller the
    same as a send, so the is-used check is no free oracle.
    """
    limits = send_limits(
        request, client_pk=client_pk, channel="", recipient_hash="", usage="", caller_only=True
    )
    return count_send(limits, CountPlan(limits.groups)).caller


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
    configured = channel_rates(channel)
    if not configured or cache_is_down() or not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    value = recipient_value(recipient_hash, usage)
    keys = [rate.key for rate in rates_for(channel, value, configured)]
    shared = client_share(configured)
    if shared and client_pk is not None:
        owned = f"{client_pk}:{value}"
        keys += [rate.key for rate in rates_for(f"{channel}.client", owned, shared)]
    try:
        if not store.add(f"ciam_otp:cleared:{channel}:{value}", 1, CLEAR_ONCE_PER):
            return  # cleared once today already
        store.delete_many(keys)
    except CacheUnavailable as exc:  # the counters expire anyway
        logger.warning("could not clear a recipient's counters (%s)", exc)
