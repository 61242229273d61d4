"""Every statement written by hand, and what the database behind a connection can do.

The ORM writes everything else. These are by hand because the ORM cannot say
them: ``UPDATE … RETURNING`` does in one round trip what the ORM does in two
(consuming quotas, claiming a delivery, and recording the sent outcome in the
same style), and the client look-up must cost the same for known and unknown
ids (``auth.py``). Databases without ``UPDATE … RETURNING`` (MySQL, SQLite
< 3.35) take the ORM's way, in ``managers/``.

Table and column names come from the model passed in and every value is a
parameter. This module imports no model (the managers and ``auth.py`` pass
theirs), so the model layer can use it without an import cycle. Statements
are built once per database alias and model, then cached.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connections, router
from django.db.models import Model, QuerySet

_M = TypeVar("_M", bound=Model)


def update_returning_supported(conn: Any) -> bool:
    """``UPDATE ... RETURNING``: PostgreSQL, and SQLite from 3.35."""
    if conn.vendor == "postgresql":
        return True
    if conn.vendor == "sqlite":
        return bool(conn.Database.sqlite_version_info >= (3, 35))
    return False


def write_alias(queryset: QuerySet[Any]) -> str:
    """Where a write through ``queryset`` goes: its ``using()``, else the router's choice."""
    chosen: str | None = getattr(queryset, "_db", None)  # Django's attribute; not in the stubs
    return chosen or router.db_for_write(queryset.model)


def _columns(alias: str, model: type[Model]) -> dict[str, str]:
    """Each concrete field's quoted column, by field name."""
    qn = connections[alias].ops.quote_name
    return {f.name: qn(f.column or f.name) for f in model._meta.concrete_fields}


def period_case(period_column: str) -> str:
    """``CASE`` from a row's period to its current period's start.

    Five parameters, from ``managers.states.period_case_params``: the same mapping
    as ``managers.states.current_period_start``, for statements written by hand.
    """
    return f"CASE {period_column} WHEN %s THEN %s WHEN %s THEN %s ELSE %s END"


@functools.lru_cache(maxsize=8)
def quota_consume(alias: str, model: type[Model]) -> str:
    """Count messages in every quota of a client (or site-wide) and channel, returning the counts.

    A row whose period rolled over (``period_start`` before the current
    period's start) starts again at the count. Parameters, in order: the
    period ``CASE``'s five, the count for a rolled-over row, the count to
    add, the ``CASE``'s five twice more, the client's pk, the channel.
    Returns ``id, client_id, limit, used, period``.
    """
    col = _columns(alias, model)
    current = period_case(col["period"])
    rolled_over = f"{col['period_start']} < {current}"
    return (
        f"UPDATE {connections[alias].ops.quote_name(model._meta.db_table)} SET "  # noqa: S608
        f"{col['used']} = CASE WHEN {rolled_over} THEN %s ELSE {col['used']} + %s END, "
        f"{col['period_start']} = CASE WHEN {rolled_over} THEN {current} "
        f"ELSE {col['period_start']} END "
        f"WHERE ({col['client']} = %s OR {col['client']} IS NULL) AND {col['channel']} = %s "
        f"RETURNING {col['id']}, {col['client']}, {col['limit']}, {col['used']}, {col['period']}"
    )


@functools.lru_cache(maxsize=8)
def quota_consume_and_insert(
    alias: str, quota: type[Model], row: type[Model], fields: tuple[str, ...], flag: str
) -> str:
    """:func:`quota_consume` and the new ``row``'s ``INSERT``, both or neither (PostgreSQL).

    One statement that needs no transaction around it: the quota rows are
    locked and their new counts worked out first (``locked``: a ``FOR UPDATE``
    waits for a concurrent send and then reads the row as that send left it),
    and the ``UPDATE`` and the ``INSERT`` run only if every new count fits
    (``ok``). A refusal changes nothing, so there is nothing to roll back.
    Parameters: :func:`quota_consume`'s, the room one more message needs (1
    when the count is 0, else 0), one value per name of ``fields`` (cast to its
    column's type, as a ``SELECT`` list has no column to take it from; without
    a length, so a value too long fails on assignment instead of being cut),
    then whether a quota taken sets the boolean ``flag`` column. Returns a row
    per quota (one row of nulls when none applies), each starting with the new
    row's pk (null when refused): ``pk, id, client_id, limit, used, period``.
    """
    conn = connections[alias]
    meta = row._meta
    col = _columns(alias, row)
    qcol = _columns(alias, quota)
    qtable = conn.ops.quote_name(quota._meta.db_table)
    current = period_case(qcol["period"])
    rolled_over = f"{qcol['period_start']} < {current}"
    kept = ", ".join(qcol[name] for name in ("id", "client", "limit", "period"))
    casts = ", ".join(
        f"CAST(%s AS {_unsized(meta.get_field(name).cast_db_type(conn))})"  # type: ignore[union-attr]
        for name in fields
    )
    used, start, limit = qcol["used"], qcol["period_start"], qcol["limit"]
    returned = ", ".join(f"locked.{qcol[name]}" for name in ("id", "client", "limit", "used"))
    return (
        f"WITH locked AS (SELECT {kept}, "  # noqa: S608
        f"CASE WHEN {rolled_over} THEN %s ELSE {used} + %s END AS {used}, "
        f"CASE WHEN {rolled_over} THEN {current} ELSE {start} END AS {start} "
        f"FROM {qtable} WHERE ({qcol['client']} = %s OR {qcol['client']} IS NULL) "
        f"AND {qcol['channel']} = %s FOR UPDATE), "
        f"ok AS (SELECT NOT EXISTS (SELECT 1 FROM locked "
        f"WHERE {limit} = 0 OR {used} + %s > {limit}) AS fits), "
        f"q AS (UPDATE {qtable} SET {used} = locked.{used}, {start} = locked.{start} "
        f"FROM locked, ok WHERE {qtable}.{qcol['id']} = locked.{qcol['id']} AND ok.fits "
        f"RETURNING {qtable}.{qcol['id']}), "
        f"t AS (INSERT INTO {conn.ops.quote_name(meta.db_table)} "
        f"({', '.join(col[name] for name in (*fields, flag))}) "
        f"SELECT {casts}, CAST(%s AS boolean) AND EXISTS (SELECT 1 FROM locked) "
        f"FROM ok WHERE ok.fits RETURNING {col['id']}) "
        f"SELECT t.{col['id']}, {returned}, locked.{qcol['period']} "
        f"FROM (SELECT 1) AS one LEFT JOIN t ON TRUE LEFT JOIN locked ON TRUE"
    )


def _unsized(db_type: str | None) -> str:
    """``varchar(64)`` as ``varchar``: an explicit cast to a length truncates silently."""
    return (db_type or "text").split("(", 1)[0]


@functools.lru_cache(maxsize=8)
def delivery_claim(alias: str, model: type[Model], fields: tuple[str, ...]) -> str:
    """Claim a token for delivery if it is still deliverable, returning ``fields``.

    Parameters: the claimed delivery status, the claim time, the pk, the
    pending status, now (the code must still be valid), the queued status,
    the claimed status and the lease cut-off (an older claim is over).
    """
    col = _columns(alias, model)
    return (
        f"UPDATE {connections[alias].ops.quote_name(model._meta.db_table)} "  # noqa: S608
        f"SET {col['delivery_status']} = %s, {col['delivery_started_at']} = %s "
        f"WHERE {col['id']} = %s AND {col['status']} = %s AND {col['code_expires_at']} > %s "
        f"AND ({col['delivery_status']} = %s "
        f"OR ({col['delivery_status']} = %s AND {col['delivery_started_at']} < %s)) "
        f"RETURNING {', '.join(col[name] for name in fields)}"
    )


@functools.lru_cache(maxsize=8)
def delivery_sent(alias: str, model: type[Model]) -> str:
    """Record an accepted message: one attempt more, the last error cleared.

    Parameters: the sent status, the provider's message id, fee, region, the
    backend's name, the time sent, the pk, the claimed status and this run's
    claim time (a run whose claim another took over records nothing).
    """
    col = _columns(alias, model)
    return (
        f"UPDATE {connections[alias].ops.quote_name(model._meta.db_table)} "  # noqa: S608
        f"SET {col['delivery_status']} = %s, {col['provider_message_id']} = %s, "
        f"{col['fee']} = %s, {col['billed_region']} = %s, {col['delivery_backend']} = %s, "
        f"{col['delivery_attempts']} = {col['delivery_attempts']} + 1, "
        f"{col['delivery_error']} = '', {col['delivery_error_code']} = '', "
        f"{col['delivery_envelope']} = '', {col['sent_at']} = %s "
        f"WHERE {col['id']} = %s AND {col['delivery_status']} = %s "
        f"AND {col['delivery_started_at']} = %s"
    )


@functools.lru_cache(maxsize=8)
def delivery_claim_due(
    alias: str, model: type[Model], fields: tuple[str, ...], skip_locked: bool = True
) -> str:
    """Claim up to a limit of the outbox's deliverable tokens, oldest first, returning ``fields``.

    The outbox is the tokens with a sealed message (``delivery_envelope``), read
    through its partial index. PostgreSQL skips rows another run is claiming
    (``FOR UPDATE SKIP LOCKED``), so concurrent runs take disjoint batches, or
    with ``skip_locked=False`` waits for them (``FOR UPDATE``, rechecked once
    they are free); SQLite has one writer at a time anyway. Any token status:
    the run closes the delivery of a token closed meanwhile. Parameters: the
    claimed delivery status, the claim time, now, the queued status, the
    claimed status, the lease cut-off and the limit.
    """
    conn = connections[alias]
    col = _columns(alias, model)
    table = conn.ops.quote_name(model._meta.db_table)
    lock = ""
    if conn.features.has_select_for_update_skip_locked:
        lock = " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
    return (
        f"UPDATE {table} "  # noqa: S608
        f"SET {col['delivery_status']} = %s, {col['delivery_started_at']} = %s "
        f"WHERE {col['id']} IN (SELECT {col['id']} FROM {table} "
        # Written as the partial index's condition is, so SQLite uses the index too.
        f"WHERE NOT ({col['delivery_envelope']} = '') "
        f"AND {col['code_expires_at']} > %s AND ({col['delivery_status']} = %s "
        f"OR ({col['delivery_status']} = %s AND {col['delivery_started_at']} < %s)) "
        f"ORDER BY {col['id']} LIMIT %s{lock}) "
        f"RETURNING {', '.join(col[name] for name in fields)}"
    )


@functools.lru_cache(maxsize=32)
def delivery_sent_many(alias: str, model: type[Model], count: int) -> str:
    """Record ``count`` accepted messages of one claim in one statement (PostgreSQL).

    As :func:`delivery_sent` for each row of a ``VALUES`` list of (pk, message
    id, fee, region, backend), 5 parameters a row, then: the sent status, the
    time sent, the claimed status and the claim time. Returns the pks recorded.
    """
    col = _columns(alias, model)
    table = connections[alias].ops.quote_name(model._meta.db_table)
    rows = ", ".join(["(%s::bigint, %s::text, %s::integer, %s::text, %s::text)"] * count)
    return (
        f"UPDATE {table} SET {col['delivery_status']} = %s, "  # noqa: S608
        f"{col['provider_message_id']} = v.message_id, {col['fee']} = v.fee, "
        f"{col['billed_region']} = v.region, {col['delivery_backend']} = v.backend, "
        f"{col['delivery_attempts']} = {col['delivery_attempts']} + 1, "
        f"{col['delivery_error']} = '', {col['delivery_error_code']} = '', "
        f"{col['delivery_envelope']} = '', {col['sent_at']} = %s "
        f"FROM (VALUES {rows}) AS v(id, message_id, fee, region, backend) "
        f"WHERE {table}.{col['id']} = v.id AND {table}.{col['delivery_status']} = %s "
        f"AND {table}.{col['delivery_started_at']} = %s "
        f"RETURNING {table}.{col['id']}"
    )


@functools.lru_cache(maxsize=8)
def client_lookup(alias: str, model: type[Model]) -> str:
    """The client with the given ``client_id``, else the oldest client: one row either way.

    Both derived tables are read whatever the id: ``COALESCE`` over two
    scalar subqueries would skip the ``MIN()`` for known ids (PostgreSQL
    evaluates them lazily), and the look-up must cost the same (``auth.py``).
    One parameter: the ``client_id``.
    """
    col = _columns(alias, model)
    table = connections[alias].ops.quote_name(model._meta.db_table)
    pk, client_id = col["id"], col["client_id"]
    return (
        f"SELECT {', '.join(col.values())} FROM {table} WHERE {pk} = ("  # noqa: S608
        f"SELECT COALESCE(m.{pk}, f.{pk}) FROM (SELECT MIN({pk}) AS {pk} FROM {table}) f "
        f"LEFT JOIN (SELECT {pk} FROM {table} WHERE {client_id} = %s) m ON 1 = 1)"
    )


# For each connection and returned field list: the attnames (in the model's order), the value
# converters the columns need (SQLite: datetimes, booleans; PostgreSQL: none), and the
# order to put the returned values in when ``fields`` is not the model's, found once.
_Plan = tuple[list[str], list[tuple[int, Any, list[Any]]], list[int] | None]
_PLANS: weakref.WeakKeyDictionary[Any, dict[Any, _Plan]] = weakref.WeakKeyDictionary()


def returned_instance(
    alias: str, model: type[_M], fields: tuple[str, ...], row: Sequence[Any]
) -> _M:
    """The (partly loaded) instance of ``model`` a ``RETURNING`` of ``fields`` gave.

    Values go through the database's converters, as the ORM reads them;
    fields left out load on access, as after ``only()``. ``fields`` may come
    in any order (``Model.from_db`` takes a partial row in the model's order).
    """
    conn = connections[alias]
    plans = _PLANS.setdefault(conn, {})
    plan = plans.get((model, fields))
    if plan is None:
        meta = model._meta
        found = [meta.get_field(name) for name in fields]
        cols = [field.get_col(meta.db_table) for field in found]  # type: ignore[union-attr]
        converters = [
            (i, col, conn.ops.get_db_converters(col) + col.get_db_converters(conn))
            for i, col in enumerate(cols)
        ]
        position = {f.attname: n for n, f in enumerate(meta.concrete_fields)}
        names = [field.attname for field in found]  # type: ignore[union-attr]
        by_model = sorted(range(len(names)), key=lambda i: position[names[i]])
        in_order = by_model == list(range(len(names)))
        plan = (
            [names[i] for i in by_model],
            [c for c in converters if c[2]],
            None if in_order else by_model,
        )
        plans[(model, fields)] = plan
    attnames, converters, order = plan
    values = list(row)
    for i, col, convert_all in converters:
        for convert in convert_all:
            values[i] = convert(values[i], col, conn)
    if order is not None:
        values = [values[i] for i in order]
    return model.from_db(alias, attnames, values)
