"""Quota transitions: consume, give back, alarm once per period, top up, start anew."""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

from django.db import connections, models, router, transaction
from django.db.models import BigIntegerField, Case, F, Field, Model, Q, Value, When
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from .. import sql
from ..exceptions import InsufficientEmailQuota, InsufficientSMSQuota
from .states import current_period_start, period_case_params, period_start_for, rolled_over

if TYPE_CHECKING:
    from ..models import OTPToken, Quota


_REFUSALS = {"sms": InsufficientSMSQuota, "email": InsufficientEmailQuota}


class QuotaQuerySet(models.QuerySet["Quota"]):
    def of(self, client_id: int | None, channel: str) -> QuotaQuerySet:
        """The quotas a send of this client on this channel takes from: its own, the site's."""
        return self.filter(Q(client_id=client_id) | Q(client__isnull=True), channel=channel)

    def with_current_used(self, now: dt.datetime | None = None) -> QuotaQuerySet:
        """Annotate ``used_now``: ``used`` as it counts now (0 once the period rolled over)."""
        return self.annotate(
            used_now=Case(
                When(rolled_over(now), then=Value(0)),
                default=F("used"),
                output_field=BigIntegerField(),
            )
        )

    def consume(
        self, client_id: int, channel: str, *, count: int = 1, returning: bool | None = None
    ) -> list[Quota]:
        """Take ``count`` messages from every quota of the send, or raise and take none.

        ``count=0`` checks that one message would fit, with the very same
        statement and row locks, taking nothing. Returns the quotas with their
        new ``used`` and their current ``period_start`` (for the alarms).

        With ``UPDATE … RETURNING`` (``returning``; by default where the
        database has it) this is one statement that counts the message in
        every quota (restarting one whose period rolled over) and returns the
        new counts; if one is over its limit the error is raised and the
        transaction rolls back, taking the increments with it. Row locks queue
        concurrent sends on each quota row, so each sees the counts of those
        before it: a quota never over-sends. Elsewhere a ``SELECT`` and one
        conditional ``UPDATE`` per quota. Inside the caller's transaction a
        refusal marks it for rollback; outside one this opens its own.
        """
        using = sql.write_alias(self)
        conn = connections[using]
        if returning is None:
            returning = sql.update_returning_supported(conn)
        now = timezone.now()
        if not returning:
            return self._consume_each(using, client_id, channel, count, now)
        with transaction.atomic(using=using, savepoint=False), conn.cursor() as cursor:
            params = _consume_params(conn, now, client_id, channel, count)
            cursor.execute(sql.quota_consume(using, self.model), params)
            return self._taken(cursor.fetchall(), channel, count, now)

    def consume_and_insert(
        self, client_id: int, channel: str, row: Model, *, count: int = 1, flag: str
    ) -> list[Quota]:
        """:meth:`consume` and ``row`` inserted, in one statement that needs no transaction.

        PostgreSQL only (``sql.quota_consume_and_insert``): a refusal changes
        nothing, so a send outside a transaction needs no ``BEGIN`` and
        ``COMMIT`` around it, and the row is written without ``Model.save()``'s
        machinery. Concurrent sends queue on the quota rows' locks, as for
        :meth:`consume`. The row's boolean field ``flag`` is set to whether a
        quota was taken. As after ``save()``, the row has its pk and
        ``post_save`` is sent; ``pre_save`` is not, because a receiver may
        change the row before it is written: with receivers, save the row the
        usual way (:meth:`can_insert_with`).
        """
        using = sql.write_alias(self)
        conn = connections[using]
        now = timezone.now()
        model = type(row)
        fields = _insert_fields(model, flag)
        params = [*_consume_params(conn, now, client_id, channel, count), 1 - count]
        params += [field.get_db_prep_save(field.pre_save(row, True), conn) for field in fields]
        params.append(bool(count))
        names = tuple(field.name for field in fields)
        with conn.cursor() as cursor:
            cursor.execute(
                sql.quota_consume_and_insert(using, self.model, model, names, flag), params
            )
            rows = cursor.fetchall()
        taken = self._taken([r[1:] for r in rows if r[1] is not None], channel, count, now)
        pk = rows[0][0]
        if pk is None:  # the statement and _taken() apply the same rule
            raise RuntimeError("the quota statement refused a send its quotas allowed")
        row.pk = pk
        setattr(row, flag, bool(count and taken))
        row._state.adding = False
        row._state.db = using
        if post_save.has_listeners(model):
            post_save.send(
                sender=model, instance=row, created=True, update_fields=None, raw=False, using=using
            )
        return taken

    def can_insert_with(self, model: type[Model], using: str) -> bool:
        """Whether :meth:`consume_and_insert` can store a ``model`` row on ``using``.

        PostgreSQL (a data-modifying ``WITH``), the quotas on the same database,
        and no ``pre_save`` receiver for ``model`` (it would not be sent).
        """
        return (
            connections[using].vendor == "postgresql"
            and router.db_for_write(self.model) == using
            and not pre_save.has_listeners(model)
        )

    def _taken(
        self, rows: list[tuple[Any, ...]], channel: str, count: int, now: dt.datetime
    ) -> list[Quota]:
        """The quotas a consuming statement returned, or the refusal if one is over its limit."""
        spare = 1 - count  # with count=0 the row holds what it held; one more must still fit
        if any(limit == 0 or used + spare > limit for _, _, limit, used, _ in rows):
            raise _REFUSALS[channel]()
        return [
            self.model(
                pk=pk,
                client_id=owner,
                channel=channel,
                limit=limit,
                used=used,
                period=period,
                period_start=period_start_for(period, now),
            )
            for pk, owner, limit, used, period in rows
        ]

    def _consume_each(
        self, using: str, client_id: int, channel: str, count: int, now: dt.datetime
    ) -> list[Quota]:
        """Each quota as a conditional UPDATE (``used < limit``, or the period rolled over)."""
        quotas = list(
            self.using(using)
            .of(client_id, channel)
            .only("pk", "period", "limit", "used", "period_start")
        )
        with transaction.atomic(using=using, savepoint=False):
            for quota in quotas:
                renew = rolled_over(now)
                updated = (
                    self.using(using)
                    .filter(pk=quota.pk, limit__gt=0)
                    .filter(Q(used__lt=F("limit")) | renew)
                    .update(
                        used=Case(When(renew, then=Value(count)), default=F("used") + count),
                        period_start=Case(
                            When(renew, then=current_period_start(now)), default=F("period_start")
                        ),
                    )
                )
                if not updated:
                    raise _REFUSALS[channel]()
                quota.used = count if quota.has_rolled_over(now) else quota.used + count
                quota.period_start = period_start_for(quota.period, now)
        return quotas

    def give_back(self, token: OTPToken) -> bool:
        """Return the message ``token`` took (its delivery failed for good): at most once.

        The token's ``quota_consumed`` flag is cleared by a conditional
        ``UPDATE`` first, so of two callers racing for the same token only one
        gives back. A quota that restarted since the token was issued is left
        alone: the message counted in a period that is over.
        """
        if not token.quota_consumed:
            return False
        using = sql.write_alias(self)
        with transaction.atomic(using=using):
            claimed = (
                type(token)
                ._default_manager.using(using)
                .filter(pk=token.pk, quota_consumed=True)
                .update(quota_consumed=False)
            )
            if not claimed:
                return False
            self.using(using).of(token.client_id, token.channel).filter(
                used__gt=0, period_start__lte=token.created_at
            ).update(used=F("used") - 1)
        token.quota_consumed = False
        return True

    def top_up(self, amount: int) -> int:
        """More messages for these quotas (the admin's top-up), without reading them."""
        return self.update(limit=F("limit") + amount)

    def start_new_period(self, now: dt.datetime | None = None) -> int:
        """Usage back to zero and each quota's current period as its start (the admin's reset)."""
        return self.update(used=0, period_start=current_period_start(now))

    def claim_alarm(self, pk: int, level: int, period_start: dt.datetime) -> bool:
        """Whether this caller reports ``level`` for this period: each threshold once per period."""
        return bool(
            self.filter(pk=pk)
            .filter(
                Q(alarm_level__lt=level)
                | ~Q(alarm_period_start=period_start)
                | Q(alarm_period_start=None)
            )
            .update(alarm_level=level, alarm_period_start=period_start)
        )


def _consume_params(
    conn: Any, now: dt.datetime, client_id: int, channel: str, count: int
) -> list[Any]:
    """``sql.quota_consume``'s parameters."""
    case = period_case_params(now, conn.ops.adapt_datetimefield_value)
    return [*case, count, count, *case, *case, client_id, channel]


@functools.lru_cache(maxsize=8)
def _insert_fields(model: type[Model], flag: str) -> tuple[Field[Any, Any], ...]:
    """The fields an ``INSERT`` of ``model`` writes: all but ``flag`` and an automatic pk."""
    meta = model._meta
    return tuple(f for f in meta.concrete_fields if f.name != flag and f is not meta.auto_field)
