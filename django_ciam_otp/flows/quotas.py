"""Quotas: a send takes one message from the client's and the site-wide quota of its channel.

Consumption is one ``UPDATE ... RETURNING`` where the database has it; a
delivery that failed for good gives its message back, at most once; admins
are told once per period when a quota reaches an alarm threshold.
"""

from __future__ import annotations

import datetime as dt

from django.core.mail import mail_admins
from django.db import connections, router, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from .. import signals
from ..conf import otp_settings
from ..exceptions import InsufficientEmailQuota, InsufficientSMSQuota
from ..models import Channel, OTPClient, OTPToken, Quota, QuotaPeriod, period_start_for
from ..sql import update_returning_supported as _update_returning_supported


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
