"""Fill the token table with old (expired, delivered) rows, as a site's history would.

Same shape as ``tests/integration/test_housekeeping.py``: 200,000 recipients
with five old tokens each, all four usages and statuses, expired a day or more
ago. A million rows load several times faster without the table's unique and
foreign-key constraints and secondary indexes, so those are dropped first and
rebuilt from their own definitions afterwards: the table ends up exactly as
the migrations made it, then ``VACUUM ANALYZE``.
"""

from __future__ import annotations

import time
from typing import Any

OLD_ROW = {
    "token_hash": "md5(g::text) || md5((-g)::text)",
    "client_id": "%(client)s",
    "auth_source_id": "NULL",
    "channel": "'sms'",
    "usage": "(ARRAY['login','signup','update_userinfo','reset_password'])[1 + g %% 4]",
    "recipient_hash": "lpad(to_hex((g %% 200000) * 2654435761 %% 4294967291), 64, 'f')",
    "recipient_masked": "'+86136****5678'",
    "code_hash": "lpad(to_hex(g), 64, 'c')",
    "code_length": "6",
    "created_at": "now() - interval '1 day' - g * interval '1 second'",
    "code_expires_at": "now() - interval '1 day' - g * interval '1 second' + interval '60 seconds'",
    "expires_at": "now() - interval '1 day' - g * interval '1 second' + interval '300 seconds'",
    "status": "(ARRAY['verified','superseded','pending','locked'])[1 + g %% 4]",
    "delivery_status": "(ARRAY['sent','sent','sent','failed'])[1 + g %% 4]",
    "sent_at": "now() - interval '1 day' - g * interval '1 second'",
}
BY_TYPE = {
    "boolean": "false",
    "smallint": "0",
    "integer": "0",
    "bigint": "0",
    "character varying": "''",
    "text": "''",
    "timestamp with time zone": "now() - interval '1 day'",
}


def insert_old_rows(conn: Any, client_pk: int, rows: int) -> float:
    """Insert ``rows`` old tokens for ``client_pk`` through an autocommit psycopg connection."""
    if not conn.autocommit:
        conn.autocommit = True
    columns = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_name = 'ciam_otp_otptoken' AND column_name <> 'id' ORDER BY ordinal_position"
    ).fetchall()
    names, values = [], []
    for name, data_type, nullable in columns:
        if name in OLD_ROW:
            names.append(name)
            values.append(OLD_ROW[name])
        elif nullable == "NO":
            names.append(name)
            values.append(BY_TYPE[data_type])
    sql = (
        f"INSERT INTO ciam_otp_otptoken ({', '.join(names)})"  # noqa: S608 - fixed names
        f" SELECT {', '.join(values)} FROM generate_series(1, %(rows)s) AS g"
    )
    started = time.perf_counter()
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'ciam_otp_otptoken'::regclass AND contype IN ('u', 'f')"
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ciam_otp_otptoken'"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint"
        " WHERE conrelid = 'ciam_otp_otptoken'::regclass)"
    ).fetchall()
    for name, _ in constraints:
        conn.execute(f'ALTER TABLE ciam_otp_otptoken DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute(sql, {"client": client_pk, "rows": rows})
    for name, definition in constraints:
        conn.execute(f'ALTER TABLE ciam_otp_otptoken ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        conn.execute(definition)
    conn.execute("VACUUM ANALYZE ciam_otp_otptoken")
    return time.perf_counter() - started
