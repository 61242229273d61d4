"""The outbox: tokens whose sealed message waits on their row, delivered in batches.

With Celery, a send outside a caller's transaction stores its sealed message
with the token (``delivery_envelope``, ``flows/enqueue.py``) and, once the row
is committed, wakes the batch task (``dispatch.wake``): it sets a flag in the
counter cache (``SET NX``) and publishes ``deliver_due`` only if the flag was
not set already, so under load most sends publish nothing. A run of the task
(:func:`deliver_due`) claims the outbox's deliverable tokens in batches of
``DELIVERY_BATCH_SIZE`` (one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
LOCKED LIMIT n) RETURNING``), offers each message along its route as a single
delivery does (``delivery.offer_token``), and records the batch's sent
messages in one statement. When the outbox looks empty the run lets go of the
flag (:func:`let_go_of_wake`) and looks once more: a send whose token
committed while the flag existed is seen by that last look, so no token waits
for a wake-up that never comes.

The flag's rule. Its expiry is moved earlier only to "now +
:data:`RELY_SECONDS`" or later, never below: a run lets go of it by setting it
to a value of its own for ``RELY_SECONDS`` and takes its last look no sooner
than that has passed on its own clock (even if another run set the flag
since: that run may die before its own look). So every flag is followed,
after it expires or is replaced, by a last look of some run, and a flag read
at time *t* with *p* ms
left exists until *t* + min(*p*, ``RELY_SECONDS``) at least. A send's count
reads the flag's lifetime in its own round trip (``CountPlan.ttl_of``, taken
before the token commits); after the commit the send skips its ``SET NX``
while the flag it read is certain to still exist (:func:`flag_lasts_until`):
a last look comes after that. A ``SET NX`` that finds the flag (after the
commit) relies on the same rule. Two paths still delete the flag: a run that
raised and a wake-up whose publish failed. Their flag's run never looks, so
the sends that relied on it wait for the next wake-up or the beat's sweep;
those sends would have found the flag with a ``SET NX`` as well (before sends
could skip, the same case was left to the sweep). A store whose count cannot
read a lifetime (the cache store) never lets a send skip, and a run there
deletes the flag and looks at once.

What stays as it was for a single delivery: the claim (with its lease) makes
each message go out once; a transient failure becomes a retry of its own (a
``deliver_otp`` task carrying the envelope, with backoff); a failure for good
closes the token and gives its quota back. A run that died holding a batch
(its worker was killed) leaves the batch claimed: the next run finds the
claim and comes back when the lease has run out (:data:`DueRun.come_back_in`).
The cost per message: a share of the claim and of the outcome statement, no
broker message, no task of its own.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from . import crypto, failover, tracing
from .backends.base import Accepted
from .conf import otp_settings
from .counters import CacheUnavailable
from .counters import store as counters
from .delivery import (
    HandOver,
    claim_lease,
    close_unusable,
    mark_failed,
    offer_token,
    record_delivered,
    report_outlived_claim,
    settle_unsent,
)
from .managers.tokens import SentRow
from .models import OTPToken, TokenStatus

# --- the wake-up flag -----------------------------------------------------------------------

#: The flag: a run of the batch task is queued or running.
WAKE_KEY = "ciam_otp:delivery:wake"
#: Seconds the flag lasts if no run clears it (a lost task, a worker that died).
WAKE_SECONDS = 2
#: Set while a run is scheduled to come back for another run's claims.
FOLLOW_UP_KEY = "ciam_otp:delivery:follow-up"


#: A flag read with more time left is relied on for this long only (seconds): a run letting go
#: of it moves its expiry to now + RELY_SECONDS, never earlier (the flag's rule, above).
RELY_SECONDS = 0.05
#: Taken off every reliance (seconds): PTTL and Redis's expiry work in whole milliseconds.
RELY_MARGIN_SECONDS = 0.005
#: The value a run sets the flag to when it lets go, before its own random part (a send's
#: ``SET NX`` holds 1): which run last let go, for whoever reads the flag.
RUN_VALUE_PREFIX = "run:"


def flag_lasts_until(asked_at: float, ttl_left_ms: int | None) -> float:
    """Until when (``time.monotonic()``) a flag read with ``ttl_left_ms`` left certainly exists.

    ``asked_at``: when the read was sent (the cache read it later, so the flag
    lived at least that long from then). 0.0 when nothing is known (no flag,
    or a store that cannot say: ``None``).
    """
    if not ttl_left_ms:
        return 0.0
    return asked_at + min(ttl_left_ms / 1000, RELY_SECONDS) - RELY_MARGIN_SECONDS


def claim_wake() -> bool:
    """Set the flag; whether this send must publish (no run pending, or the cache cannot say:
    a task too many beats a lost code)."""
    return _set_flag(WAKE_KEY, WAKE_SECONDS, if_unknown=True)


def release_wake() -> None:
    """Delete the flag (a run that raised, a publish that failed): the next send publishes."""
    try:
        counters.delete_many([WAKE_KEY])
    except CacheUnavailable:
        pass  # the flag runs out by itself (WAKE_SECONDS)


def let_go_of_wake() -> None:
    """The run's outbox looks empty: end its flag within :data:`RELY_SECONDS`, then return.

    Sets the flag to a value of this run's for ``RELY_SECONDS`` (whatever it
    held: a send's flag, another run's, or none any more) and returns when
    that has passed on this process's clock, counted from after the ``SET``
    returned, so after the flag's expiry whatever Redis does with it (an
    eviction, a failover, a ``FLUSHDB``: a flag gone early must not end the
    wait early). It waits even when another run took the flag over meanwhile:
    that run may die before its own last look. A ``SET`` that failed may still
    have landed just before the error: the wait is counted from the error. A
    cache that does not answer at all leaves the flag as it was (up to
    ``WAKE_SECONDS``), which a failed ``DEL`` did before as well.
    """
    mine = f"{RUN_VALUE_PREFIX}{secrets.token_hex(8)}"
    try:
        waits = counters.hand_over(WAKE_KEY, mine, round(RELY_SECONDS * 1000))
    except CacheUnavailable:
        waits = True
    if waits:  # not on a store whose counts read no lifetime: there no send relies on the flag
        time.sleep(RELY_SECONDS)


def claim_follow_up(seconds: float) -> bool:
    """Whether this run should come back in ``seconds`` for another run's claims.

    Only one such return is pending at a time: under load, runs overlap and
    each sees the others' live claims; without this, every one would come back.
    A cache that cannot say says no: then every send wakes a run anyway, and the
    beat's sweep (``docs/celery.md``) covers a quiet site.
    """
    return _set_flag(FOLLOW_UP_KEY, max(1, int(seconds)), if_unknown=False)


def _set_flag(key: str, seconds: int, *, if_unknown: bool) -> bool:
    """``SET NX`` through the counter store (its breaker included); ``if_unknown`` when the
    cache does not answer."""
    try:
        return counters.add(key, 1, seconds)
    except CacheUnavailable:
        return if_unknown


# --- a run of the batch task ------------------------------------------------------------------

#: A run records its sent messages at least this often (seconds; see ``_deliver_batch``).
RECORD_SECONDS = 0.1

#: A run of the batch task starts no message after this many seconds of its own
#: (the rest goes back to the outbox for the next run): a batch never meets
#: the task's soft time limit, whose walk budget (``failover.WALK_SECONDS``)
#: each message's offer is measured against.
BATCH_SECONDS = 2.0


@dataclass(frozen=True)
class Retry:
    """A retry the batch task publishes: a task of its own for one token."""

    token_id: int
    envelope: str
    countdown: float
    expires: dt.datetime
    #: The attempt the retry is (the task's ``retries``).
    attempt: int


@dataclass
class DueRun:
    """What one run of the batch task did, and what it leaves to the broker."""

    sent: int = 0
    #: Messages offered to a backend so far.
    offered: int = 0
    #: Claimed tokens handed to a retry of their own (a task per token).
    retried: int = 0
    #: A retry's task could not be published (the broker is down): the run publishes no
    #: more retries and leaves such tokens in the outbox (with their envelopes).
    stalled: bool = False
    #: Stopped for time with tokens left in the outbox: wake another run at once.
    more: bool = False
    #: A claim on the outbox that is not this run's: look again when it runs out (seconds).
    come_back_in: float | None = None


#: After a batch, a run waits this long and looks again before it lets go of the flag: under
#: load the sends of that moment find the run pending (no publish) and go in one batch.
#: A lone send is not held up (it is delivered as soon as the run starts).
LINGER_SECONDS = 0.05

#: Publishes a retry's own task; whether it could.
PublishRetry = Callable[[Retry], bool]
#: A retry's task waits at least this long (the run takes the envelope off the row after
#: publishing it).
MIN_RETRY_COUNTDOWN = 0.1


def deliver_due(
    *,
    started: float,
    publish_retry: PublishRetry,
    release: Callable[[], None] = let_go_of_wake,
    linger: float = LINGER_SECONDS,
    call_for_help: Callable[[], None] = lambda: None,
) -> DueRun:
    """Deliver the outbox in batches until it is empty (or this run's time is up).

    ``started``: when the run started (``time.monotonic()``). While it finds
    messages, the run drains the outbox, waits :data:`LINGER_SECONDS` and
    looks again; when a look finds nothing, ``release`` lets go of the wake-up
    flag (:func:`let_go_of_wake`: it returns once no send can rely on this
    run's flag any more) and one more look takes whatever a send committed
    meanwhile (``dispatch.wake``). A run that raises deletes the flag instead
    (:func:`release_wake`) and takes no last look. A full batch means a
    backlog: the run calls for help (``call_for_help`` publishes another run,
    which takes the next batch) before it delivers, so slow providers are
    called by as many workers as the backlog needs, not by one run at a time.
    In an OpenTelemetry span ``ciam_otp.deliver_due`` when tracing is on.
    """
    with tracing.span("ciam_otp.deliver_due"):
        run = DueRun()
        try:
            offered = -1
            while not run.more and run.offered > offered:
                if offered >= 0:
                    if linger <= 0:
                        break
                    time.sleep(linger)  # let the next sends gather into one batch
                offered = run.offered
                _drain(run, started, publish_retry, call_for_help=call_for_help)
        except BaseException:
            # The next send wakes a run at once. A delete, not a hand-over: the sends that
            # relied on this flag are left to the next wake-up or the sweep, as before.
            release_wake()
            raise
        if not run.more:
            release()
            # The last look waits for rows another transaction holds rather than skip them.
            _drain(run, started, publish_retry, skip_locked=False)
        if not run.more:
            run.come_back_in = _foreign_claims(timezone.now())
        return run


def _drain(
    run: DueRun,
    started: float,
    publish_retry: PublishRetry,
    *,
    skip_locked: bool = True,
    call_for_help: Callable[[], None] = lambda: None,
) -> None:
    """Claim and deliver batches until one comes back short (or the run's time is up)."""
    size = int(otp_settings.DELIVERY_BATCH_SIZE)
    while True:
        if time.monotonic() - started > BATCH_SECONDS:
            run.more = True
            return
        now = timezone.now()
        batch = OTPToken.objects.claim_due(
            limit=size, now=now, lease=claim_lease(), skip_locked=skip_locked
        )
        if len(batch) == size:
            call_for_help()
        if batch:
            _deliver_batch(batch, now, started, run, publish_retry)
        if len(batch) < size or run.more:
            return


def _deliver_batch(
    batch: list[OTPToken],
    claimed_at: dt.datetime,
    started: float,
    run: DueRun,
    publish_retry: PublishRetry,
) -> None:
    """Deliver one claimed batch, recording its sent messages a few at a time.

    Sent messages are recorded at least every :data:`RECORD_SECONDS` (and at
    the end): a run that dies between a send and its record lets the next run
    send that code again once the claim runs out, so that window is kept short.
    A run interrupted mid-batch gives back the claims it did not offer.
    """
    sent: list[tuple[OTPToken, failover.Offer]] = []
    first_unrecorded = 0.0
    index = 0
    try:
        for index, token in enumerate(batch):  # noqa: B007 - read in the finally clause
            if run.offered and time.monotonic() - started > BATCH_SECONDS:
                run.more = True  # the rest goes back to the outbox for the next run
                break
            offered = _offer_claimed(token, started, run)
            if offered is None:
                continue
            if offered.out_of_time:
                run.more = True
                break
            if offered.result is failover.Result.SENT:
                if not sent:
                    first_unrecorded = time.monotonic()
                sent.append((token, offered))
                if time.monotonic() - first_unrecorded > RECORD_SECONDS:
                    _record_sent(sent, claimed_at, run)
                    sent = []
                continue
            settle_unsent(
                token,
                offered,
                token.delivery_attempts,
                claimed_at,
                hand_over=_hand_over(token, run, publish_retry),
            )
        else:
            index = len(batch)
    finally:  # what was sent is recorded, what was not offered goes back, even on an error
        _record_sent(sent, claimed_at, run)
        left = [t.pk for t in batch[index:]]
        if left:
            OTPToken.objects.release_claims(left, claimed_at=claimed_at)


def _hand_over(token: OTPToken, run: DueRun, publish_retry: PublishRetry) -> HandOver:
    """Publish ``token``'s retry as a task of its own (``delivery.HandOver``)."""

    def hand_over(countdown: float) -> bool:
        if run.stalled:
            return False  # the broker failed this run already: the outbox keeps the token
        retry = Retry(
            token.pk,
            token.delivery_envelope,
            max(MIN_RETRY_COUNTDOWN, countdown),
            token.code_expires_at,
            token.delivery_attempts + 1,
        )
        published = publish_retry(retry)
        run.retried += published
        run.stalled = run.stalled or not published
        return published

    return hand_over


def _offer_claimed(token: OTPToken, started: float, run: DueRun) -> failover.Offer | None:
    """Offer a claimed outbox token's message; ``None`` if there is none to offer.

    A token closed meanwhile (superseded by a resend) sends nothing: its delivery
    expires and its quota comes back, as a task of its own would have done.
    """
    if token.status != TokenStatus.PENDING:
        close_unusable(token)
        return None
    try:
        payload: dict[str, Any] | None = crypto.unseal(token.delivery_envelope)
    except ValueError:
        payload = None
    if payload is None or payload.get("h") != token.token_hash[:16]:
        mark_failed(token, "envelope could not be opened (hash key changed?)")
        return None
    # The run's first message is always offered, whatever its backends' worst case.
    elapsed = time.monotonic() - started if run.offered else 0.0
    run.offered += 1
    return offer_token(token, payload, token.delivery_attempts, elapsed=elapsed)


def _record_sent(
    sent: list[tuple[OTPToken, failover.Offer]], claimed_at: dt.datetime, run: DueRun
) -> None:
    rows = []
    for token, offered in sent:
        accepted = offered.accepted or Accepted("")
        rows.append(
            SentRow(
                token.pk, accepted.message_id, accepted.fee, accepted.region or "", offered.backend
            )
        )
    recorded = OTPToken.objects.mark_sent_many(rows, claimed_at=claimed_at)
    for token, offered in sent:
        if token.pk in recorded:
            run.sent += 1
            record_delivered(token, offered.backend)
        else:
            report_outlived_claim(token, offered.backend)


def _foreign_claims(now: dt.datetime) -> float | None:
    """Seconds until the oldest claim on the outbox runs out, if another run holds one.

    A run that died (its worker was killed) leaves its batch claimed; its
    redelivered task finds nothing it may take yet and comes back then, as a
    single delivery's task waits out a claim (:func:`_claimed_elsewhere`).
    """
    oldest = OTPToken.objects.oldest_outbox_claim(now=now)
    if oldest is None:
        return None
    left = (oldest + claim_lease() - now).total_seconds()
    return max(0.0, left) + random.uniform(0.1, 1.0)  # noqa: S311
