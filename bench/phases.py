"""CPU of each step of a send, in-process: where the web tier's time beyond the floor goes.

Run on a live stack (PostgreSQL, Redis, the broker, a Celery worker) through
Django's test client, like ``bench/probe.py``; started without one (no
``DATABASE_URL``), it starts the bench's stack, runs itself in it and prints
a table. Each step named in ``STEPS``
is wrapped to add up its process CPU time (``time.process_time``: waiting
for PostgreSQL or Redis is not counted, their work is not either); steps
nest, so a step's figure includes the steps it calls. Also measured: the
two floors (``/bench/baseline``, ``/bench/insert-floor``) in the same
process, so the send's figure can be read against them.

    .venv/bin/python -m bench.phases            # 2,000 of each, a table (~1 minute)
    .venv/bin/python -m bench.phases 5000 --json phases.json

In the stack it prints one JSON line: CPU per request of the floors and the
send, and per step its CPU per send and its calls per send.
"""

from __future__ import annotations

import argparse
import base64
import functools
import importlib
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

#: (module, attribute path) of each step timed; a class's method as "Class.method".
STEPS = (
    ("django_ciam_otp.auth", "BasicClientAuthentication.authenticate"),
    ("django_ciam_otp.auth", "authenticate_client"),
    ("django_ciam_otp.auth", "FailureThrottle.check"),
    ("django_ciam_otp.views", "SendOTPView.post"),
    ("django_ciam_otp.flows.shape", "parse_send"),
    ("django_ciam_otp.flows.counting", "count"),
    ("django_ciam_otp.ratelimits", "count_send"),
    ("django_ciam_otp.counters.wire", "encode"),
    ("django_ciam_otp.counters.redis", "run_script"),
    ("django_ciam_otp.abuse", "watch"),
    ("django_ciam_otp.sitewide", "watch"),
    ("django_ciam_otp.flows.issuing", "new_token"),
    ("django_ciam_otp.flows.issuing", "issue"),
    ("django_ciam_otp.flows.quotas", "consume_quota_and_store"),
    ("django_ciam_otp.flows.quotas", "consume_quota"),
    ("django_ciam_otp.managers.quotas", "QuotaQuerySet.consume_and_insert"),
    ("django_ciam_otp.flows.enqueue", "prepare"),
    ("django_ciam_otp.models", "OTPToken.save"),
    ("django_ciam_otp.dispatch", "wake"),
)


def _wrap(module: str, path: str, totals: dict[str, float], calls: dict[str, int]) -> None:
    owner: Any = importlib.import_module(module)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original: Callable[..., Any] = getattr(owner, name)
    label = f"{module.rsplit('.', 1)[-1]}.{path}"

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.process_time() - started
            calls[label] += 1

    setattr(owner, name, timed)


def main(rounds: int, offset: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.test import Client

    from bench.phones import number

    totals: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for module, path in STEPS:
        _wrap(module, path, totals, calls)
    auth = "Basic " + base64.b64encode(b"TENANT_CLIENT_ID:TENANT_CLIENT_SECRET").decode()
    client = Client(HTTP_AUTHORIZATION=auth, HTTP_HOST="127.0.0.1")

    def post(path: str, n: int) -> None:
        body = {
            "usage": "login",
            "phone_number": number(n),
            "auth_source_id": "MOCK_SMS_OTP_AUTH_SOURCE_ID",
        }
        response = client.post(path, body, content_type="application/json")
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.content!r}")

    per_request: dict[str, float] = {}
    for name, path in (
        ("floor", "/bench/baseline"),
        ("insert_floor", "/bench/insert-floor"),
        ("send", "/otp/send"),
    ):
        for n in range(offset, offset + 50):  # warm up: connections, imports, caches
            post(path, n)
        offset += 50
        totals.clear()
        calls.clear()
        started = time.process_time()
        for n in range(offset, offset + rounds):
            post(path, n)
        offset += rounds
        per_request[name] = (time.process_time() - started) / rounds * 1000
    steps = {
        label: {"cpu_ms": totals[label] / rounds * 1000, "calls": calls[label] / rounds}
        for label in sorted(totals, key=lambda k: -totals[k])
    }
    return {"cpu_ms_per_request": per_request, "send_steps": steps, "rounds": rounds}


def table(result: dict[str, Any]) -> str:
    per_request = result["cpu_ms_per_request"]
    lines = [
        f"in-process CPU per request ({result['rounds']} each): "
        + ", ".join(f"{name} {ms:.3f} ms" for name, ms in per_request.items()),
        f"send beyond the insert floor: {per_request['send'] - per_request['insert_floor']:.3f} ms",
        "steps of a send (nested: a step includes the steps it calls):",
    ]
    for label, step in result["send_steps"].items():
        lines.append(f"  {label:45s} {step['cpu_ms']:7.3f} ms  x{step['calls']:.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("rounds", type=int, nargs="?", default=2000)
    parser.add_argument("offset", type=int, nargs="?", default=8_000_000_000)
    parser.add_argument("--json", help="also write the result here (outside a stack)")
    args = parser.parse_args()
    if "DATABASE_URL" in os.environ:
        print(json.dumps(main(args.rounds, args.offset)))
        sys.stdout.flush()
    else:
        from bench.run import in_stack
        from bench.stack import running_stack

        with running_stack(log=lambda line: print(line, file=sys.stderr)) as stack:
            found = in_stack(stack, "bench.phases", str(args.rounds), str(args.offset))
        print(table(found))
        if args.json:
            with open(args.json, "w") as out:
                json.dump(found, out, indent=1)
