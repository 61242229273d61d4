"""Every rule of sending and verifying a one-time code.

The HTTP views, the authentication backend and the example project's pages
all call :func:`send_otp` and :func:`verify_otp`, so there is one place that
decides. Checks run in the contract's order (SPEC.md section 2): shape,
recipient, auth source, is-used, rate limit, quota — so a refused request
consumes no quota.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.core.mail import mail_admins
from django.db import connections, router, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.utils import timezone, translation

from . import abuse, breaker, crypto, dispatch, identity, ratelimits, signals, snapshots
from .clients import require_client
from .conf import otp_settings
from .exceptions import (
    DeliveryFailed,
    EmailIsUsed,
    InsufficientEmailQuota,
    InsufficientSMSQuota,
    InvalidAuthSource,
    InvalidOTP,
    InvalidOTPToken,
    InvalidRequest,
    OTPError,
    OTPExpired,
    PhoneNumberIsUsed,
    TemporarilyUnavailable,
    TooManyAttempts,
)
from .models import (
    AuthSource,
    Channel,
    DeliveryStatus,
    OTPClient,
    OTPToken,
    Quota,
    QuotaPeriod,
    RecipientThrottle,
    TestRecipient,
    TokenStatus,
    Usage,
    period_start_for,
)
from .sql import update_returning_supported as _update_returning_supported
from .validators import Recipient, deliverable_email, normalize_email, normalize_phone_number

logger = logging.getLogger(__name__)

USAGES = frozenset(Usage.values)
LANGUAGE_MAX_LENGTH = OTPToken._meta.get_field("language").max_length or 16


@dataclass(frozen=True)
class SendResult:
    """What a successful send returns: the opaque ``otp_token`` and when to allow the next send."""

    otp_token: str
    retry_after: int
    token: OTPToken

    def as_dict(self) -> dict[str, Any]:
        return {"otp_token": self.otp_token, "retry_after": self.retry_after}


@dataclass(frozen=True)
class VerifyResult:
    """A verified code: what it was for and for whom."""

    usage: str
    channel: str
    recipient: str
    token: OTPToken

    def as_dict(self) -> dict[str, Any]:
        key = "phone_number" if self.channel == Channel.SMS else "email"
        return {"verified": True, "usage": self.usage, key: self.recipient}


# --- shape -------------------------------------------------------------------


def _optional_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return _text(name, value)


def _text(name: str, value: Any) -> str:
    """``value`` when it is text that can be stored and hashed, else ``InvalidRequest``.

    JSON's ``"\\ud800"`` decodes to a lone surrogate: a ``str`` that no
    database, cache or hash can take as UTF-8.
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"'{name}' is not valid Unicode text.") from None
    return value


def _clean_usage(usage: Any) -> str:
    usage = _optional_str("usage", usage)
    if usage is None:
        return Usage.LOGIN
    if usage not in USAGES:
        raise InvalidRequest(
            "'usage' must be one of login, signup, update_userinfo, reset_password."
        )
    return usage


def _clean_recipient(phone_number: Any, email: Any) -> Recipient:
    phone_number = _optional_str("phone_number", phone_number)
    email = _optional_str("email", email)
    if (phone_number is None) == (email is None):
        raise InvalidRequest("Give exactly one of 'phone_number' and 'email'.")
    if phone_number is not None:
        return normalize_phone_number(phone_number)
    assert email is not None
    return normalize_email(email)


# --- auth source and defaults --------------------------------------------------


@dataclass(frozen=True)
class CodePolicy:
    auth_source: AuthSource | None
    code_length: int
    code_validity: int


def _code_policy(auth_source_id: str | None, channel: str) -> CodePolicy:
    if auth_source_id is None:
        return CodePolicy(
            None, int(otp_settings.DEFAULT_CODE_LENGTH), int(otp_settings.DEFAULT_CODE_VALIDITY)
        )
    # Cannot be an id (PostgreSQL refuses NUL).
    if len(auth_source_id) > 64 or "\x00" in auth_source_id:
        raise InvalidAuthSource("Unknown or disabled auth source.")
    # A per-process copy of the enabled auth sources (see snapshots.py for how stale).
    source = snapshots.auth_sources.get().get(auth_source_id)
    if source is None:
        raise InvalidAuthSource("Unknown or disabled auth source.")
    if source.channel != channel:
        raise InvalidAuthSource(f"This auth source sends codes by {source.get_channel_display()}.")
    return CodePolicy(source, source.code_length, source.code_validity)


# --- users -------------------------------------------------------------------


def find_user(channel: str, recipient_key: str) -> Any | None:
    """The user a canonical recipient belongs to, or ``None`` (see :mod:`.identity`)."""
    return identity.find_user(channel, recipient_key)


# --- quota ---------------------------------------------------------------------


def _quota_error(channel: str) -> type[InsufficientSMSQuota | InsufficientEmailQuota]:
    return InsufficientSMSQuota if channel == Channel.SMS else InsufficientEmailQuota


def _quotas_for(client: OTPClient, channel: str) -> list[Quota]:
    return list(
        Quota.objects.filter(Q(client=client) | Q(client__isnull=True), channel=channel).only(
            "pk", "period", "limit", "used", "period_start"
        )
    )


def consume_quota(client: OTPClient, channel: str, *, count: int = 1) -> bool:
    """Take one message from the client's and the site-wide quota, or raise.

    ``count=0`` checks that one message would fit, with the very same
    statement and row locks, but takes nothing: a ``reset_password`` for an
    address with no account answers like a real one (same refusals, same
    work, same timing) and consumes no quota.

    Returns whether any quota applies (and so was consumed). On PostgreSQL and
    SQLite this is one ``UPDATE ... RETURNING`` that counts the message in
    every quota of the channel (restarting a quota whose period rolled over)
    and returns the new counts; if any is over its limit, the error is raised
    and the transaction rolls back, taking the increments with it. Row locks
    make concurrent sends queue on each quota row, so each sees the counts of
    those before it: a quota never over-sends. (A send refused for quota thus
    writes and rolls back a row version per quota; refusals are rare and
    bounded by the rate limits.) Other databases take each quota as a
    conditional ``UPDATE`` after a ``SELECT``.

    Call inside ``transaction.atomic``: a refusal marks that transaction for
    rollback (outside one, this opens its own).
    """
    if _update_returning_supported(connections[router.db_for_write(Quota)]):
        return _consume_quota_returning(client, channel, count)
    return _consume_quota_each(client, channel, count)


def _consume_quota_returning(client: OTPClient, channel: str, count: int) -> bool:
    using = router.db_for_write(Quota)
    conn = connections[using]
    qn = conn.ops.quote_name
    meta = Quota._meta
    col = {f.name: qn(f.column) for f in meta.concrete_fields}
    now = timezone.now()
    starts = {period: period_start_for(period, now) for period in QuotaPeriod.values}
    adapt = conn.ops.adapt_datetimefield_value
    # The start of the current period of each row's own period.
    current = f"CASE {col['period']} WHEN %s THEN %s WHEN %s THEN %s ELSE %s END"
    current_params = [
        QuotaPeriod.DAILY,
        adapt(starts[QuotaPeriod.DAILY]),
        QuotaPeriod.MONTHLY,
        adapt(starts[QuotaPeriod.MONTHLY]),
        adapt(starts[QuotaPeriod.NONE]),
    ]
    rolled_over = f"{col['period_start']} < {current}"
    sql = (
        f"UPDATE {qn(meta.db_table)} SET "  # noqa: S608 - names from the model, values as params
        f"{col['used']} = CASE WHEN {rolled_over} THEN %s ELSE {col['used']} + %s END, "
        f"{col['period_start']} = CASE WHEN {rolled_over} THEN {current} "
        f"ELSE {col['period_start']} END "
        f"WHERE ({col['client']} = %s OR {col['client']} IS NULL) AND {col['channel']} = %s "
        f"RETURNING {col['id']}, {col['client']}, {col['limit']}, {col['used']}, {col['period']}"
    )
    params = [
        *current_params,
        count,
        count,
        *current_params,
        *current_params,
        client.pk,
        channel,
    ]
    # With count=0 the row holds what it held; one more message must still fit.
    spare = 1 - count
    with transaction.atomic(using=using, savepoint=False), conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if any(limit == 0 or used + spare > limit for _, _, limit, used, _ in rows):
            raise _quota_error(channel)()
    if not count:
        return bool(rows)
    for pk, client_id, limit, used, period in rows:
        quota = Quota(
            pk=pk, client_id=client_id, channel=channel, limit=limit, used=used, period=period
        )
        _alarm_on_commit(quota, used, starts[period], using)
    return bool(rows)


def _consume_quota_each(client: OTPClient, channel: str, count: int) -> bool:
    """Each quota as a conditional UPDATE (``used < limit``, or the period has rolled over)."""
    quotas = _quotas_for(client, channel)
    with transaction.atomic(savepoint=False):
        for quota in quotas:
            current = period_start_for(quota.period)
            rolled_over = Q(period_start__lt=current)
            updated = (
                Quota.objects.filter(pk=quota.pk, limit__gt=0)
                .filter(Q(used__lt=F("limit")) | rolled_over)
                .update(
                    used=Case(When(rolled_over, then=Value(count)), default=F("used") + count),
                    period_start=Case(
                        When(rolled_over, then=Value(current)), default=F("period_start")
                    ),
                )
            )
            if not updated:
                raise _quota_error(channel)()
            if not count:
                continue
            used_now = 1 if quota.period_start < current else quota.used + 1
            _alarm_on_commit(quota, used_now, current, router.db_for_write(Quota))
    return bool(quotas)


def _alarm_on_commit(quota: Quota, used: int, period_start: dt.datetime, using: str) -> None:
    """Check the alarm thresholds after commit, if this send reached one (no query otherwise)."""
    if quota.limit and any(
        used * 100 >= t * quota.limit for t in otp_settings.QUOTA_ALARM_THRESHOLDS
    ):
        transaction.on_commit(lambda: _quota_alarm(quota, used, period_start), using=using)


def _quota_alarm(quota: Quota, used: int, period_start: dt.datetime) -> None:
    """Tell admins once per period when a quota reaches an alarm threshold.

    ``used`` may lag a concurrent send by one; the conditional UPDATE makes
    sure only one process reports each threshold.
    """
    reached = [t for t in otp_settings.QUOTA_ALARM_THRESHOLDS if used * 100 >= t * quota.limit]
    if not reached or not quota.limit:
        return
    level = max(reached)
    claimed = (
        Quota.objects.filter(pk=quota.pk)
        .filter(
            Q(alarm_level__lt=level)
            | ~Q(alarm_period_start=period_start)
            | Q(alarm_period_start=None)
        )
        .update(alarm_level=level, alarm_period_start=period_start)
    )
    if not claimed:
        return
    quota.refresh_from_db()
    signals.quota_threshold_reached.send(
        sender=Quota, quota=quota, percent=level, used=used, limit=quota.limit
    )
    mail_admins(
        f"OTP quota at {level}%: {quota}",
        f"The {quota.get_channel_display()} quota {quota} has used {used} of {quota.limit} "
        f"messages ({level}%). Top it up in the admin before sends are refused.",
        fail_silently=True,
    )


def quota_available(client: OTPClient, channel: str) -> bool:
    """Whether a send would get quota now, without consuming any."""
    return all(q.remaining > 0 for q in _quotas_for(client, channel))


def give_back_quota(token: OTPToken) -> None:
    """Return the quota a token consumed (its delivery failed for good); at most once."""
    if not token.quota_consumed:
        return
    with transaction.atomic():
        claimed = OTPToken.objects.filter(pk=token.pk, quota_consumed=True).update(
            quota_consumed=False
        )
        if not claimed:
            return
        Quota.objects.filter(
            Q(client_id=token.client_id) | Q(client__isnull=True),
            channel=token.channel,
            used__gt=0,
            period_start__lte=token.created_at,
        ).update(used=F("used") - 1)
    token.quota_consumed = False


# --- send --------------------------------------------------------------------


def send_otp(
    client: OTPClient | str | None = None,
    *,
    usage: str | None = None,
    phone_number: str | None = None,
    email: str | None = None,
    auth_source_id: str | None = None,
    request: HttpRequest | None = None,
    language: str | None = None,
) -> SendResult:
    """Issue a code for ``phone_number`` or ``email`` and queue its delivery.

    ``client`` is the API client the code is sent for (an ``OTPClient`` or a
    client_id); ``None`` means the site's own (``CIAM_OTP["SITE_CLIENT_ID"]``),
    and ``ImproperlyConfigured`` says how to set it up when there is none.

    Raises an :class:`~django_ciam_otp.exceptions.OTPError` subclass for every
    refusal of the contract. ``request`` (optional) feeds the per-IP limit.

    Inside an outer ``transaction.atomic`` block (``ATOMIC_REQUESTS``) the
    delivery task is published before this returns, not at the outer commit,
    so a broker outage is still answered with ``TemporarilyUnavailable`` and
    leaves nothing behind; the worker waits for the outer commit.
    """
    client = require_client(client)
    usage = _clean_usage(usage)
    auth_source_id = _optional_str("auth_source_id", auth_source_id)
    if auth_source_id == "":
        auth_source_id = None
    language = _optional_str("language", language)
    if language is not None and len(language) > LANGUAGE_MAX_LENGTH:
        raise InvalidRequest(f"'language' must be a language code ({LANGUAGE_MAX_LENGTH} chars).")
    # Shape first: recipient presence and the login auth source, before content.
    _optional_str("phone_number", phone_number)
    _optional_str("email", email)
    if (phone_number is None) == (email is None):
        raise InvalidRequest("Give exactly one of 'phone_number' and 'email'.")
    if usage == Usage.LOGIN and auth_source_id is None:
        raise InvalidRequest("'auth_source_id' is required for usage=login.")

    recipient = _clean_recipient(phone_number, email)
    policy = _code_policy(auth_source_id, recipient.channel)
    if breaker.current(recipient.channel) is not None:
        # The provider is known down (misconfigured): a 200 would promise a code
        # that cannot arrive. Nothing is counted or consumed.
        raise TemporarilyUnavailable()

    # A login code does not depend on an account here (the authentication
    # backend decides that), so only the other usages look one up.
    users = [] if usage == Usage.LOGIN else identity.find_users(recipient.channel, recipient.key)
    if users and usage in (Usage.SIGNUP, Usage.UPDATE_USERINFO):
        # The answer tells the caller something: it costs them like a send.
        ratelimits.count_caller(request, client_pk=client.pk)
        raise PhoneNumberIsUsed() if recipient.channel == Channel.SMS else EmailIsUsed()
    user = users[0] if len(users) == 1 else None
    # No account for a reset: answer exactly as for a real one — the same
    # limits, monitor, quota statement and publish — but send nothing.
    suppressed = usage == Usage.RESET_PASSWORD and user is None
    # A code that proves control of an account goes to the address stored on it.
    address = _delivery_address(recipient, user)

    recipient_hash = crypto.hash_recipient(recipient.key)
    test_code = _test_code(recipient, users, usage)
    # Test recipients' fixed codes are not deliveries: no monitor, no quota.
    counted = test_code is None
    deliver = counted and not suppressed
    prefix = abuse.phone_prefix(recipient.key) if recipient.channel == Channel.SMS else None
    checked_prefix = prefix if counted else None
    monitor = (
        abuse.send_counters(prefix, client.pk, recipient_hash, recipient.key)
        if counted
        else abuse.SendCounters()
    )
    # Client, IP, recipient, blocked prefix, prefix: one round trip on Redis.
    # The caller's hits (client, IP) stay counted whatever happens next; the
    # recipient's and the prefix's are handed back when nothing is sent.
    charge = ratelimits.count_send(
        request,
        client_pk=client.pk,
        channel=recipient.channel,
        # name+tag@ and name@ share the per-address limits (identity.rate_limit_key).
        recipient_hash=crypto.hash_recipient(
            identity.rate_limit_key(recipient.channel, recipient.key)
        ),
        usage=usage,
        prefix=checked_prefix,
        blocked=abuse.blocked_error(checked_prefix) if checked_prefix is not None else None,
        counters=monitor.counters,
        sums=monitor.sums,
        marker=ratelimits.Counter(
            _sent_marker(client.pk, recipient_hash, usage), otp_settings.TOKEN_TTL + 60
        ),
        distinct=monitor.distinct,
    )

    if counted:
        blocked = abuse.refusal(
            checked_prefix, recipient_hash, charge.sums, charge.distinct, monitor.caps
        )
        if blocked is not None:
            charge.recipient.refund()
            raise blocked

    raw_token = crypto.new_otp_token()
    code = test_code or crypto.new_code(policy.code_length)
    now = timezone.now()
    token_hash = crypto.hash_token(raw_token)
    token = OTPToken(
        token_hash=token_hash,
        client=client,
        auth_source_id=policy.auth_source.pk if policy.auth_source is not None else None,
        channel=recipient.channel,
        usage=usage,
        recipient_hash=recipient_hash,
        recipient_masked=crypto.mask_recipient(recipient.key),
        code_hash=crypto.hash_code(token_hash, code),
        code_length=policy.code_length,
        code_expires_at=now
        + dt.timedelta(seconds=min(policy.code_validity, otp_settings.TOKEN_TTL)),
        expires_at=now + dt.timedelta(seconds=otp_settings.TOKEN_TTL),
        delivery_status=(
            DeliveryStatus.TEST
            if test_code is not None
            else DeliveryStatus.SUPPRESSED
            if suppressed
            else DeliveryStatus.QUEUED
        ),
        is_test=test_code is not None,
        language=language or translation.get_language() or "",
        created_at=now,
    )
    # The plain code leaves this process only inside the sealed envelope.
    payload = {"h": token_hash[:16], "c": code, "r": address}

    try:
        _issue(token, payload, client, recipient.channel, counted=counted, deliver=deliver)
    except (InsufficientSMSQuota, InsufficientEmailQuota):
        charge.recipient.refund()
        raise
    except TemporarilyUnavailable:
        _undo_send(token, charge)
        raise

    if charge.marker_was_set:
        _supersede_older(token)
    if counted:
        abuse.record_send(prefix, client.pk, charge.sums)
    signals.otp_sent.send(
        sender=OTPToken,
        token=token,
        client=client,
        usage=usage,
        channel=recipient.channel,
        recipient_masked=token.recipient_masked,
        suppressed=suppressed,
    )
    return SendResult(otp_token=raw_token, retry_after=charge.retry_after, token=token)


def _issue(
    token: OTPToken,
    payload: dict[str, Any],
    client: OTPClient,
    channel: str,
    *,
    counted: bool,
    deliver: bool,
) -> None:
    """Take the quota, store the token and publish its delivery task — all or nothing.

    A suppressed reset (``counted`` but not ``deliver``) runs the same quota
    statement taking nothing and publishes a task that finds nothing to send,
    so its answer, its refusals and its timing are a real reset's.

    On its own, the task is published when the token's transaction commits
    (the worker must find the row). Inside a caller's transaction the outer
    commit may come too late to answer 503, so the task is published at once
    from a savepoint that a broker failure rolls back (token and quota with
    it); its envelope says so (``"w"``), and the worker looks again a moment
    later while the row is not visible.
    """
    using = router.db_for_write(OTPToken)
    # Inline delivery has no broker to fail: it always waits for the commit.
    nested = dispatch.delivery_mode() == dispatch.CELERY and _in_callers_transaction(using)
    envelope = crypto.seal({**payload, "w": 1} if nested else payload)
    with transaction.atomic(using=using):
        if counted:
            consumed = consume_quota(client, channel, count=1 if deliver else 0)
            token.quota_consumed = consumed and deliver
        token.save(force_insert=True)
        if not counted:
            return
        if nested:
            _enqueue(token, envelope)
        else:
            transaction.on_commit(lambda: _enqueue(token, envelope), using=using)


def _in_callers_transaction(using: str) -> bool:
    """Whether the caller holds a transaction open (``ATOMIC_REQUESTS``, ``atomic()``).

    Asked the way Django's ``durable`` blocks ask it, so the transactions a
    ``TestCase`` wraps each test in do not count: tests see what production
    sees outside a caller's transaction.
    """
    if not transaction.get_connection(using).in_atomic_block:
        return False
    try:  # no savepoint: the durable check alone, no statement sent
        with transaction.atomic(using=using, savepoint=False, durable=True):
            return False
    except RuntimeError:
        return True


def _delivery_address(recipient: Recipient, user: Any | None) -> str:
    """Where the code goes: the account's stored address when the code is for an account.

    The stored address has the recipient's canonical form (that is how the
    account was found), but it is the account's own spelling that receives
    the code, never the caller's.
    """
    if user is None or recipient.channel != Channel.EMAIL:
        return recipient.address
    stored = identity.stored_address(user, recipient.channel)
    if stored is None:
        return recipient.address
    try:
        return deliverable_email(stored)  # its IDNA2008 ASCII domain (validators.py)
    except OTPError:
        return recipient.address  # cannot happen: it matched the canonical form


def _test_code(recipient: Recipient, users: list[Any], usage: str) -> str | None:
    """The fixed code of an enabled test recipient, when test recipients are on.

    A test recipient that has since become an account's address is an
    ordinary recipient again: its public fixed code must never prove control
    of a real account (nor skip that account's limits and quotas). A login
    send has not looked accounts up yet, so it does here — only for
    addresses that are test recipients, which are few.
    """
    if not otp_settings.TEST_RECIPIENTS_ENABLED:
        return None
    code = (
        TestRecipient.objects.filter(
            recipient=recipient.key, channel=recipient.channel, enabled=True
        )
        .values_list("code", flat=True)
        .first()
    )
    if code is None:
        return None
    if usage == Usage.LOGIN:
        users = identity.find_users(recipient.channel, recipient.key)
    return None if users else code


def _enqueue(token: OTPToken, envelope: str) -> None:
    """Hand the code to its delivery: a Celery task or inline (``dispatch.delivery_mode``)."""
    if dispatch.delivery_mode() == dispatch.INLINE:
        dispatch.deliver_inline(token, envelope)
    else:
        dispatch.publish(token, envelope)


def _undo_send(token: OTPToken, charge: ratelimits.SendCharge) -> None:
    """The task could not be queued: leave nothing consumed (no token, no quota, no counters)."""
    if token.pk is not None:
        give_back_quota(token)
        OTPToken.objects.filter(pk=token.pk).delete()
    charge.refund_all()


def _sent_marker(client_pk: int, recipient_hash: str, usage: str) -> str:
    """The "sent lately" marker of (client, recipient, usage), in the rate-limit cache.

    Every send sets it for ``TOKEN_TTL`` plus 60 s (clock skew between servers):
    while it is absent, no earlier token of theirs can still be pending.
    """
    return f"ciam_otp:sent:{client_pk}:{usage}:{recipient_hash}"


def _supersede_older(token: OTPToken) -> None:
    """A new send makes the earlier pending tokens of (client, recipient, usage) unusable.

    Skipped (one UPDATE less) when the sent marker proves this is the first
    send to them within a token's lifetime. Should the marker be lost (Redis
    restarted), verification still refuses a token that has a newer sibling
    (see :func:`_newer_token`), so an older code never verifies either way.
    """
    OTPToken.objects.filter(
        client_id=token.client_id,
        recipient_hash=token.recipient_hash,
        usage=token.usage,
        status=TokenStatus.PENDING,
        pk__lt=token.pk,
    ).update(status=TokenStatus.SUPERSEDED)


# --- verify ------------------------------------------------------------------


def verify_otp(
    client: OTPClient | str | None,
    otp_token: str,
    otp: str,
    *,
    phone_number: str | None = None,
    email: str | None = None,
    usage: str | None = None,
) -> VerifyResult:
    """Check ``otp`` for ``otp_token``; a correct code is consumed exactly once.

    Order of answers: the token must exist, belong to this client, recipient
    and usage, and be pending (``invalid_otp_token``); then the recipient must
    not be locked out and the token not out of attempts (``too_many_attempts``);
    then the code must be within its validity (``otp_expired``) and equal
    (``invalid_otp``). Wrong codes count against the token and the recipient.
    ``client`` as for :func:`send_otp` (``None``: the site's own).
    """
    client = require_client(client)
    if not isinstance(otp_token, str) or not otp_token or len(otp_token) > 512:
        raise InvalidRequest("'otp_token' must be a non-empty string.")
    if not isinstance(otp, str) or not otp:
        raise InvalidRequest("'otp' must be a non-empty string.")
    _text("otp_token", otp_token)
    _text("otp", otp)
    usage = _clean_usage(usage)
    recipient = _clean_recipient(phone_number, email)
    recipient_hash = crypto.hash_recipient(recipient.key)
    token_hash = crypto.hash_token(otp_token)

    token = (
        OTPToken.objects.filter(token_hash=token_hash)
        .annotate(has_newer=Exists(_newer_token()))
        .first()
    )
    now = timezone.now()
    if (
        token is None
        or token.client_id != client.pk
        or not crypto.constant_time_equals(token.recipient_hash, recipient_hash)
        or token.usage != usage
        or now >= token.expires_at
    ):
        _fail(None, recipient_hash, InvalidOTPToken())
    assert token is not None
    if token.status == TokenStatus.FAILED or token.delivery_status == DeliveryStatus.FAILED:
        raise DeliveryFailed()
    if token.status == TokenStatus.LOCKED:
        raise TooManyAttempts()
    if token.status != TokenStatus.PENDING or token.has_newer:
        raise InvalidOTPToken()
    if token.is_test and identity.is_used(recipient.channel, recipient.key):
        # A test recipient's public fixed code never proves control of an account.
        raise InvalidOTPToken("This code was issued to a test recipient that is now an account's.")
    if _recipient_locked(recipient_hash, now):
        raise TooManyAttempts("Too many wrong codes for this recipient. Try again later.")
    if now >= token.code_expires_at:
        raise OTPExpired()

    code = otp.strip()
    if not crypto.constant_time_equals(crypto.hash_code(token_hash, code), token.code_hash):
        _record_wrong_code(token, recipient_hash, now)

    consumed = OTPToken.objects.filter(
        pk=token.pk,
        status=TokenStatus.PENDING,
        attempts__lt=otp_settings.MAX_VERIFY_ATTEMPTS,
    ).update(status=TokenStatus.VERIFIED, verified_at=now)
    if not consumed:  # another request used it (or the last attempt) first
        raise InvalidOTPToken()
    RecipientThrottle.objects.filter(recipient_hash=recipient_hash, failures__gt=0).update(
        failures=0, locked_until=None
    )
    token.status = TokenStatus.VERIFIED
    token.verified_at = now
    # The person proved the address: sends spent on it by others no longer count.
    ratelimits.clear_recipient(
        recipient.channel,
        crypto.hash_recipient(identity.rate_limit_key(recipient.channel, recipient.key)),
        usage,
        client.pk,
    )
    if not token.is_test:
        abuse.record_verification(
            abuse.phone_prefix(recipient.key) if recipient.channel == Channel.SMS else None,
            client.pk,
        )
    signals.otp_verified.send(
        sender=OTPToken,
        token=token,
        client=client,
        usage=usage,
        channel=recipient.channel,
        recipient_masked=token.recipient_masked,
    )
    return VerifyResult(
        usage=usage, channel=recipient.channel, recipient=recipient.key, token=token
    )


def _newer_token() -> QuerySet[OTPToken]:
    """Tokens issued after the outer one to the same (client, recipient, usage).

    A resend supersedes the earlier token (``_supersede_older``); this makes
    verification refuse the earlier one even where that UPDATE was skipped.
    """
    return OTPToken.objects.filter(
        client_id=OuterRef("client_id"),
        recipient_hash=OuterRef("recipient_hash"),
        usage=OuterRef("usage"),
        pk__gt=OuterRef("pk"),
    )


def _fail(token: OTPToken | None, recipient_hash: str, error: Exception) -> None:
    signals.otp_verification_failed.send(
        sender=OTPToken,
        token=token,
        error=getattr(error, "code", "invalid_otp"),
        recipient_hash=recipient_hash,
    )
    raise error


def _recipient_locked(recipient_hash: str, now: dt.datetime) -> bool:
    return RecipientThrottle.objects.filter(
        recipient_hash=recipient_hash, locked_until__gt=now
    ).exists()


def _record_wrong_code(token: OTPToken, recipient_hash: str, now: dt.datetime) -> None:
    """Count a wrong code against the token and the recipient, then raise."""
    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    with transaction.atomic():
        counted = OTPToken.objects.filter(
            pk=token.pk, status=TokenStatus.PENDING, attempts__lt=max_attempts
        ).update(attempts=F("attempts") + 1)
        if not counted:
            _fail(token, recipient_hash, TooManyAttempts())
        OTPToken.objects.filter(
            pk=token.pk, status=TokenStatus.PENDING, attempts__gte=max_attempts
        ).update(status=TokenStatus.LOCKED)
        throttle, _ = RecipientThrottle.objects.get_or_create(recipient_hash=recipient_hash)
        RecipientThrottle.objects.filter(pk=throttle.pk).update(failures=F("failures") + 1)
        throttle.refresh_from_db(fields=["failures"])
        if throttle.failures >= otp_settings.MAX_RECIPIENT_FAILURES:
            RecipientThrottle.objects.filter(pk=throttle.pk).update(
                failures=0,
                locked_until=now + dt.timedelta(seconds=otp_settings.RECIPIENT_LOCKOUT_SECONDS),
            )
    remaining = max(0, max_attempts - (token.attempts + 1))
    _fail(token, recipient_hash, InvalidOTP(attempts_remaining=remaining))


# --- provisioning (management commands, admin, demo data) ----------------------


def create_client(
    name: str,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    sms_quota: int | None = None,
    email_quota: int | None = None,
    quota_period: str = QuotaPeriod.NONE,
) -> tuple[OTPClient, str]:
    """Create an API client (and its quotas); return it with the raw secret, shown once."""
    with transaction.atomic():
        client = OTPClient(name=name, client_id=client_id or crypto.new_client_id())
        raw_secret = client.set_secret(client_secret)
        client.full_clean()
        client.save()
        for channel, limit in ((Channel.SMS, sms_quota), (Channel.EMAIL, email_quota)):
            if limit is not None:
                Quota.objects.create(
                    client=client,
                    channel=channel,
                    limit=limit,
                    period=quota_period,
                    period_start=period_start_for(quota_period),
                )
    return client, raw_secret


def purge_expired_tokens(*, older_than: dt.timedelta = dt.timedelta(0)) -> int:
    """Delete tokens whose otp_token expired more than ``older_than`` ago; return the count."""
    cutoff = timezone.now() - older_than
    deleted, _ = OTPToken.objects.filter(expires_at__lt=cutoff).delete()
    return deleted


__all__ = [
    "SendResult",
    "VerifyResult",
    "send_otp",
    "verify_otp",
    "find_user",
    "consume_quota",
    "give_back_quota",
    "purge_expired_tokens",
    "QuotaPeriod",
]
