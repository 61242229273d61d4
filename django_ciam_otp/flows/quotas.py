"""Quotas: a send takes one message from the client's and the site-wide quota of its channel.

Consumption is one ``UPDATE ... RETURNING`` where the database has it; a
delivery that failed for good gives its message back, at most once; admins
are told once per period when a quota reaches an alarm threshold.
"""

from __future__ import annotations

import datetime as dt

from django.core.mail import mail_admins
from django.db import router, transaction
from django.db.models.signals import post_save

from .. import signals
from ..conf import otp_settings
from ..models import OTPClient, OTPToken, Quota


def consume_quota(client: OTPClient, channel: str, *, count: int = 1) -> bool:
    """Take one message from the client's and the site-wide quota, or raise.

    ``count=0`` checks that one message would fit, with the very same
    statement and row locks, but takes nothing: a ``reset_password`` for an
    address with no account answers like a real one (same refusals, same
    work, same timing) and consumes no quota. Returns whether any quota
    applies (and so was consumed). How, and why it never over-sends:
    ``Quota.objects.consume()``; a send that reaches an alarm threshold
    checks it after commit.

    Call inside ``transaction.atomic``: a refusal marks that transaction for
    rollback (outside one, this opens its own).
    """
    using = router.db_for_write(Quota)
    taken = Quota.objects.db_manager(using).consume(client.pk, channel, count=count)
    if count:
        for quota in taken:
            _alarm_on_commit(quota, quota.used, quota.period_start, using)
    return bool(taken)


def consume_quota_and_store(client: OTPClient, token: OTPToken, *, count: int = 1) -> None:
    """:func:`consume_quota`, then ``token`` saved (``quota_consumed`` set): all or nothing.

    On PostgreSQL one statement does both (``Quota.objects.consume_and_insert``),
    all or nothing by itself, so it needs no transaction of its own
    (:func:`needs_no_transaction`), and the row is written without
    ``Model.save()``'s machinery. Elsewhere, or when a ``pre_save`` receiver
    must see the token first, the quota statement and then ``save()``: call
    that inside ``transaction.atomic``, as :func:`consume_quota`.
    """
    using = router.db_for_write(OTPToken)
    if not stores_in_one_statement(using):
        token.quota_consumed = consume_quota(client, token.channel, count=count) and bool(count)
        token.save(force_insert=True, using=using)
        return
    taken = Quota.objects.db_manager(using).consume_and_insert(
        client.pk, token.channel, token, count=count, flag="quota_consumed"
    )
    if count:
        for quota in taken:
            _alarm_on_commit(quota, quota.used, quota.period_start, using)


def stores_in_one_statement(using: str) -> bool:
    """Whether :func:`consume_quota_and_store` is one statement on ``using``."""
    return Quota.objects.can_insert_with(OTPToken, using)


def needs_no_transaction(using: str) -> bool:
    """Whether :func:`consume_quota_and_store` may run with no transaction around it.

    When it is one statement, nothing after it can fail (a ``post_save``
    receiver that raises would leave a committed token behind a 500), and
    the connection commits each statement (no transaction open, autocommit
    on: ``on_commit`` then runs the hand-off at once, as a commit would).
    """
    return (
        stores_in_one_statement(using)
        and not post_save.has_listeners(OTPToken)
        and transaction.get_autocommit(using)
    )


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
    if not Quota.objects.claim_alarm(quota.pk, level, period_start):
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
