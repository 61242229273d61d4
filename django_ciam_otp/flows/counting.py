"""Step 4 of a send: every limit and the SMS-pumping monitor in one count (one Redis round trip).

The rules declare what they count (``ratelimits.send_limits``: client, IP,
recipient, blocked prefix, prefix; ``abuse.watch``: the monitor's counters;
``sitewide.watch``: the site-wide view and its budget), this step puts them
in one ``CountPlan`` with the "sent lately" marker, runs it, and reads the
result by name: a limit refuses, the monitor refuses, or the send goes on.
With Celery delivery the same round trip reads how long the outbox's wake-up
flag lives (:func:`wake_flag_until`), so that most sends under load need no
``SET NX`` of their own after their commit (``dispatch.wake``).
The caller's hits (client, IP) stay counted whatever happens next; the
recipient's, the prefix's and the monitor's are handed back when nothing is
sent.
"""

from __future__ import annotations

from django.http import HttpRequest

from .. import abuse, crypto, dispatch, identity, outbox, ratelimits, sitewide
from ..conf import otp_settings
from ..counters import CountPlan, Marker
from ..models import Channel, OTPClient
from .eligibility import Eligibility
from .shape import SendRequest


def sent_marker(client_pk: int, recipient_hash: str, usage: str) -> str:
    """The "sent lately" marker of (client, recipient, usage), in the rate-limit cache.

    Every send sets it for ``TOKEN_TTL`` plus 60 s (clock skew between servers):
    while it is absent, no earlier token of theirs can still be pending.
    """
    return f"ciam_otp:sent:{client_pk}:{usage}:{recipient_hash}"


def phone_prefix_of(ask: SendRequest) -> str | None:
    recipient = ask.recipient
    return abuse.phone_prefix(recipient.key) if recipient.channel == Channel.SMS else None


def count(
    request: HttpRequest | None,
    client: OTPClient,
    ask: SendRequest,
    who: Eligibility,
    recipient_hash: str,
) -> ratelimits.SendCharge:
    """Count the send against every limit or raise the refusal (nothing is sent yet)."""
    recipient = ask.recipient
    prefix = phone_prefix_of(ask) if who.counted else None
    limits = ratelimits.send_limits(
        request,
        client_pk=client.pk,
        channel=recipient.channel,
        # name+tag@ and name@ share the per-address limits (identity.rate_limit_key).
        recipient_hash=crypto.hash_recipient(
            identity.rate_limit_key(recipient.channel, recipient.key)
        ),
        usage=ask.usage,
        prefix=prefix,
        blocked=abuse.blocked_error(prefix) if prefix is not None else None,
    )
    watch = (
        abuse.watch(prefix, client.pk, recipient_hash, recipient.key)
        if who.counted
        else abuse.Watch()
    )
    site = sitewide.watch(watch.prefix, abuse.known_key(watch.prefix or ""))
    plan = CountPlan(
        groups=limits.groups,
        bumps=watch.bumps + site.bumps,
        marker=Marker(
            sent_marker(client.pk, recipient_hash, ask.usage), otp_settings.TOKEN_TTL + 60
        ),
        sums=watch.sums + site.sums,
        distinct=watch.distinct + site.distinct,
        budgets=site.budgets,
        # Only a send the batch task delivers wakes it (the other modes read nothing more).
        ttl_of=outbox.WAKE_KEY if dispatch.delivery_mode() == dispatch.CELERY else None,
    )
    charge = ratelimits.count_send(limits, plan)
    # The site-wide view first: it may switch the mode whatever the prefix's fate.
    paused = sitewide.judge(site, charge.result)
    blocked = abuse.refusal(watch, charge.result) or paused
    if blocked is not None:
        charge.recipient.refund()
        raise blocked
    return charge


def wake_flag_until(charge: ratelimits.SendCharge) -> float:
    """Until when (``time.monotonic()``) the wake-up flag this count read certainly exists.

    0.0 when the count read none (no flag, a cache that cannot say, the cache down):
    the send's wake-up then sets the flag itself (``outbox.flag_lasts_until``).
    """
    left = charge.result.ttl_left if charge.result is not None else None
    return outbox.flag_lasts_until(charge.asked_at, left)


def record(
    ask: SendRequest, client: OTPClient, who: Eligibility, charge: ratelimits.SendCharge
) -> None:
    """After the send: the monitor learns of it (and may block the prefix)."""
    if who.counted:
        abuse.record_send(phone_prefix_of(ask), charge.result)
