"""In-process look at one send: SQL queries, Redis round-trips, and a pyinstrument profile.

Run by ``bench/run.py`` against the live stack's PostgreSQL, Redis and
broker (the environment of the stack), through Django's test client, so the
whole request (middleware, DRF, authentication, the send, publishing the
delivery task) is measured, but not gunicorn or the network.

    python -m bench.probe ROUNDS OFFSET [--profile out.html]

Prints one JSON line: per-send SQL queries (and the statements of one send),
Redis round-trips to the cache and to the broker, and the median latency.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any


def _count_round_trips() -> Counter[str]:
    """Count each network write of redis-py (one per command, one per pipeline) by server port."""
    from redis.connection import AbstractConnection

    counts: Counter[str] = Counter()
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        counts[str(getattr(self, "port", "?"))] += 1
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    return counts


def main(rounds: int, offset: int, profile: str | None) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.phones import number

    trips = _count_round_trips()
    cache_port = os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    broker_port = os.environ["CELERY_BROKER_URL"].rsplit(":", 1)[1].split("/")[0]
    auth = "Basic " + base64.b64encode(b"TENANT_CLIENT_ID:TENANT_CLIENT_SECRET").decode()
    client = Client(HTTP_AUTHORIZATION=auth, HTTP_HOST="127.0.0.1")

    def send(n: int) -> None:
        body = {
            "usage": "login",
            "phone_number": number(n),
            "auth_source_id": "MOCK_SMS_OTP_AUTH_SOURCE_ID",
        }
        response = client.post("/otp/send", body, content_type="application/json")
        if response.status_code != 200:
            raise SystemExit(f"send answered {response.status_code}: {response.content!r}")

    for n in range(offset, offset + 20):  # warm up: connections, imports, caches
        send(n)
    offset += 20
    trips.clear()
    times = []
    with CaptureQueriesContext(connection) as queries:
        for n in range(offset, offset + rounds):
            started = time.perf_counter()
            send(n)
            times.append(time.perf_counter() - started)
    one_send = [q["sql"] for q in queries.captured_queries[: len(queries) // rounds]]
    result: dict[str, Any] = {
        "sql_per_send": len(queries) / rounds,
        "sql_one_send": one_send,
        "redis_cache_round_trips_per_send": trips[cache_port] / rounds,
        "redis_broker_round_trips_per_send": trips[broker_port] / rounds,
        "in_process_median_ms": statistics.median(times) * 1000,
    }
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        offset += rounds
        with profiler:
            for n in range(offset, offset + rounds):
                send(n)
        with open(profile, "w") as out:
            out.write(profiler.output_html())
        with open(profile.rsplit(".", 1)[0] + ".txt", "w") as out:
            out.write(profiler.output_text(unicode=False, color=False, show_all=False))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("rounds", type=int)
    parser.add_argument("offset", type=int)
    parser.add_argument("--profile")
    args = parser.parse_args()
    print(json.dumps(main(args.rounds, args.offset, args.profile)))
    sys.stdout.flush()
