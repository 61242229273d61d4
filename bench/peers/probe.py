"""In-process look at one peer's code request: SQL statements, latency, the look-up's plan.

Run by ``bench/run.py`` in the peer's environment (its settings module and
database on the live stack) after the load rounds, through Django's test
client, so the whole request (middleware, the view, the code, the message
rendered and dropped) is measured, but not gunicorn or the network.

    python -m bench.peers.probe PEER ROUNDS OFFSET

Prints one JSON line: SQL statements per request (and those of one request),
the answers that sent a code, the median latency, and for drfpasswordless the
plan PostgreSQL chose for its user look-up (``EXPLAIN``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any


def main(name: str, rounds: int, offset: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.peers import by_name
    from bench.phones import number

    peer = by_name(name)
    client = Client(HTTP_HOST="127.0.0.1")

    def body(i: int) -> dict[str, str]:
        if peer.recipient == "email":
            return {"email": f"u{offset + i}@bench.example"}
        return {"mobile": "+86" + number(offset + i)}

    counts, seconds, ok = [], [], 0
    statements: list[str] = []
    for i in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.post(peer.path, body(i), content_type="application/json")
            seconds.append(time.perf_counter() - t0)
        ok += int(
            response.status_code == peer.expect_status
            and peer.expect_body in response.content.decode()
        )
        counts.append(len(queries.captured_queries))
        if i == rounds // 2:
            statements = [q["sql"][:600] for q in queries.captured_queries]
    result: dict[str, Any] = {
        "peer": name,
        "requests": rounds,
        "sent": ok,
        "sql_per_request": statistics.mean(counts),
        "statements_of_one_request": statements,
        "p50_ms": statistics.median(seconds) * 1000,
        "email_backend": settings.EMAIL_BACKEND,
    }
    if peer.recipient == "mobile":
        from django.contrib.auth import get_user_model

        sql, params = (
            get_user_model()
            ._default_manager.filter(mobile__iexact="+86" + number(offset))
            .query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, params)
            result["lookup_plan"] = [row[0] for row in cursor.fetchall()]
        result["lookup_sql"] = sql
        result["upper_index"] = bool(getattr(settings, "BENCH_MOBILE_UPPER_INDEX", False))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("peer")
    parser.add_argument("rounds", type=int)
    parser.add_argument("offset", type=int)
    args = parser.parse_args()
    print(json.dumps(main(args.peer, args.rounds, args.offset)))
