"""A token table with a million old rows: send and verify stay on indexes, purge clears it."""

from __future__ import annotations

import json
import statistics
import subprocess
import time

import pytest

from tests.support.servers import PYTHON, REPO, manage, wait_until

from .conftest import delivered, e164, new_phone, post, send_sms

pytestmark = pytest.mark.integration

OLD_ROWS = 1_000_000

# Values for the columns that matter; every other NOT NULL column gets a neutral
# value by type, so the insert keeps working when the model grows a column.
_OLD_ROW = {
    "token_hash": "md5(g::text) || md5((-g)::text)",  # unique, in random order
    "client_id": "%(client)s",
    "auth_source_id": "NULL",
    "channel": "'sms'",
    "usage": "(ARRAY['login','signup','update_userinfo','reset_password'])[1 + g %% 4]",
    # 200,000 distinct recipients with five old tokens each, like real traffic
    # (a multiplicative hash spreads them like HMAC values would).
    "recipient_hash": "lpad(to_hex((g %% 200000) * 2654435761 %% 4294967291), 64, 'f')",
    "recipient_masked": "'+86136****5678'",
    "code_hash": "lpad(to_hex(g), 64, 'c')",  # not indexed: any 64 characters do
    "code_length": "6",
    "created_at": "now() - interval '1 day' - g * interval '1 second'",
    "code_expires_at": "now() - interval '1 day' - g * interval '1 second' + interval '60 seconds'",
    "expires_at": "now() - interval '1 day' - g * interval '1 second' + interval '300 seconds'",
    "status": "(ARRAY['verified','superseded','pending','locked'])[1 + g %% 4]",
    "delivery_status": "(ARRAY['sent','sent','sent','failed'])[1 + g %% 4]",
    "sent_at": "now() - interval '1 day' - g * interval '1 second'",
}
_BY_TYPE = {
    "boolean": "false",
    "smallint": "0",
    "integer": "0",
    "bigint": "0",
    "character varying": "''",
    "text": "''",
    "timestamp with time zone": "now() - interval '1 day'",
}


def insert_old_rows(db, client_pk: int, rows: int) -> float:
    columns = db.query(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_name = 'ciam_otp_otptoken' AND column_name <> 'id' ORDER BY ordinal_position"
    )
    names, values = [], []
    for name, data_type, nullable in columns:
        if name in _OLD_ROW:
            names.append(name)
            values.append(_OLD_ROW[name])
        elif nullable == "NO":
            names.append(name)
            values.append(_BY_TYPE[data_type])
    sql = (
        f"INSERT INTO ciam_otp_otptoken ({', '.join(names)})"  # noqa: S608 - fixed names
        f" SELECT {', '.join(values)} FROM generate_series(1, %(rows)s) AS g"
    )
    started = time.perf_counter()
    with db.postgres.connect() as conn:
        conn.autocommit = True
        # A million rows load several times faster into a table without its
        # unique and foreign-key constraints and secondary indexes; all are
        # rebuilt from their own definitions right after, so the table ends up
        # exactly as the migrations made it.
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
        conn.execute("ANALYZE ciam_otp_otptoken")
    return time.perf_counter() - started


def http_round_trips(stack, client, rounds: int) -> tuple[float, float]:
    """Median seconds of POST /otp/send and of POST /otp/verify (with the delivered code)."""
    phones = [new_phone() for _ in range(rounds)]
    sends, tokens = [], {}
    for phone in phones:
        answer = send_sms(stack.web.url, client, phone)
        assert answer.status == 200, answer.body
        sends.append(answer.seconds)
        tokens[e164(phone)] = (phone, answer.body["otp_token"])
    wait_until(
        lambda: len(delivered(stack.sms_dir, set(tokens))) == rounds, 30, what="the deliveries"
    )
    verifies = []
    for message in delivered(stack.sms_dir, set(tokens)):
        phone, token = tokens[message.phone_number]
        body = {"otp_token": token, "otp": message.code, "phone_number": phone}
        answer = post(stack.web.url, "/otp/verify", body, client)
        assert answer.status == 200, answer.body
        verifies.append(answer.seconds)
    return statistics.median(sends), statistics.median(verifies)


def probe(env, client, rounds: int, phone_base: int) -> dict:
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "tests.integration.probe_queries",
            client.client_id,
            str(rounds),
            str(phone_base),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_million_old_tokens_change_neither_plans_nor_latency(shared_stack, db, make_client):
    client = make_client()
    rounds = 25
    before_http = http_round_trips(shared_stack, client, rounds)
    before = probe(shared_stack.env, client, rounds, 9000)

    seconds = insert_old_rows(db, db.client_pk(client.client_id), OLD_ROWS)
    assert db.value("SELECT count(*) FROM ciam_otp_otptoken") >= OLD_ROWS

    after_http = http_round_trips(shared_stack, client, rounds)
    after = probe(shared_stack.env, client, rounds, 9100)

    scans = [p for p in after["plans"] if "Seq Scan on ciam_otp_otptoken" in p["plan"]]
    assert not scans, json.dumps(scans, indent=2)
    assert len(after["plans"]) >= 4  # insert, supersede, claim, mark sent, lookup, consume...

    ratios = {
        "http send": after_http[0] / before_http[0],
        "http verify": after_http[1] / before_http[1],
        "in-process send": after["send_median_ms"] / before["send_median_ms"],
        "in-process verify": after["verify_median_ms"] / before["verify_median_ms"],
    }
    report = {
        "inserted rows": OLD_ROWS,
        "insert + index rebuild + ANALYZE seconds": round(seconds, 1),
        "http medians ms before": [round(v * 1000, 1) for v in before_http],
        "http medians ms after": [round(v * 1000, 1) for v in after_http],
        "in-process medians ms before": [
            round(before["send_median_ms"], 1),
            round(before["verify_median_ms"], 1),
        ],
        "in-process medians ms after": [
            round(after["send_median_ms"], 1),
            round(after["verify_median_ms"], 1),
        ],
        "ratios after/before": {k: round(v, 2) for k, v in ratios.items()},
    }
    print("\n" + json.dumps(report, indent=2))
    for plan in after["plans"]:
        print(f"\n{plan['sql'][:160]}...\n{plan['plan']}")
    for name, ratio in ratios.items():
        assert ratio < 3, (name, report)

    # Housekeeping: the purge command deletes the expired rows and says how many.
    started = time.perf_counter()
    output = manage(shared_stack.env, "purge_otp_tokens")
    purge_seconds = time.perf_counter() - started
    assert int(output.strip().splitlines()[-1]) >= OLD_ROWS
    remaining = db.value("SELECT count(*) FROM ciam_otp_otptoken WHERE expires_at < now()")
    print(f"\npurge_otp_tokens: {output.strip()} rows in {purge_seconds:.1f} s; {remaining} left")
    assert remaining < 1000  # only tokens that expired during the purge itself
