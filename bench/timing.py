"""``make bench-timing``: can response times tell a known identifier from an unknown one?

    python -m bench.timing [--only client-auth[,...]] [--rounds 20000] [--json out.json]
    python -m bench.timing --list

In-process, no services: Django is set up here on the test suite's settings
(SQLite in memory, local-memory cache), so what is measured is the Python and
database work of each path, without the network noise that hides it from one
request but not from thousands. Each section calls its two paths
alternately, many thousand times (the order flipped every pair, so drift in
the machine's speed hits both alike), and prints both medians in µs, their
ratio and the spread of that ratio over blocks of 1,000 pairs. A ratio within
the blocks' spread of 1.0 is what "the same work" looks like; a path that
skips work shows as a ratio off 1.0 by more than that spread, in every block.

Sections (a registry: :func:`section` adds one; ``--only`` picks some):

* ``client-auth``, client authentication: ``auth.authenticate_client`` with a
  known client_id and a wrong secret against an unknown client_id, with one
  fallback hash key configured (so both paths run two HMACs).
* ``reset``, ``reset_password`` for an address with an account against one
  without, as whole HTTP requests on the bench's live stack (PostgreSQL,
  Redis, a real broker and worker, gunicorn; needs what ``make bench`` needs).

Not part of the test suite: timing never decides whether a test passes.
Prints one summary block per section; ``--json`` also writes every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Result = dict[str, Any]
SectionFunc = Callable[[argparse.Namespace], Result]

#: Pairs per block for the spread of the ratio.
BLOCK = 1000


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    run: SectionFunc


#: Every section, in the order they run.
SECTIONS: dict[str, Section] = {}


def section(name: str, title: str) -> Callable[[SectionFunc], SectionFunc]:
    """Register ``func(args) -> result`` as section ``name`` (result: see :func:`compare`)."""

    def register(func: SectionFunc) -> SectionFunc:
        SECTIONS[name] = Section(name, title, func)
        return func

    return register


def log(message: str = "") -> None:
    print(message, flush=True)


# --- measuring ---------------------------------------------------------------------------------


def alternate(
    a: Callable[[], object], b: Callable[[], object], pairs: int, *, warmup: int = 500
) -> tuple[list[int], list[int]]:
    """Nanoseconds of ``pairs`` calls of ``a`` and of ``b``, interleaved, order flipped each pair.

    The garbage collector is off while measuring: a collection landing in one
    path's call would be charged to that path.
    """
    clock = time.perf_counter_ns
    for _ in range(warmup):
        a()
        b()
    times_a: list[int] = []
    times_b: list[int] = []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i in range(pairs):
            first, second, into_first, into_second = (
                (a, b, times_a, times_b) if i % 2 == 0 else (b, a, times_b, times_a)
            )
            t0 = clock()
            first()
            t1 = clock()
            second()
            t2 = clock()
            into_first.append(t1 - t0)
            into_second.append(t2 - t1)
    finally:
        if enabled:
            gc.enable()
    return times_a, times_b


def compare(label_a: str, times_a: list[int], label_b: str, times_b: list[int]) -> Result:
    """Medians (µs), their ratio ``a / b``, and the ratio's range over blocks of pairs."""
    median_a = statistics.median(times_a) / 1000
    median_b = statistics.median(times_b) / 1000
    blocks = [
        statistics.median(times_a[i : i + BLOCK]) / statistics.median(times_b[i : i + BLOCK])
        for i in range(0, len(times_a) - BLOCK + 1, BLOCK)
    ]
    return {
        "a": label_a,
        "b": label_b,
        "pairs": len(times_a),
        "median_a_us": round(median_a, 2),
        "median_b_us": round(median_b, 2),
        "difference_us": round(median_a - median_b, 2),
        "ratio": round(median_a / median_b, 4),
        "block_ratio_min": round(min(blocks), 4) if blocks else None,
        "block_ratio_max": round(max(blocks), 4) if blocks else None,
    }


def describe(title: str, result: Result) -> list[str]:
    width = max(len(result["a"]), len(result["b"])) + 1
    lines = [
        f"{title} ({result['pairs']} alternating pairs{result.get('note', '')})",
        f"  {result['a'] + ':':<{width}} median {result['median_a_us']:8.1f} µs",
        f"  {result['b'] + ':':<{width}} median {result['median_b_us']:8.1f} µs",
        f"  ratio {result['ratio']:.3f} (difference {result['difference_us']:+.1f} µs)",
    ]
    if result["block_ratio_min"] is not None:
        lines.append(
            f"  ratio per block of {BLOCK} pairs: "
            f"{result['block_ratio_min']:.3f} .. {result['block_ratio_max']:.3f}"
        )
    return lines


# --- Django ------------------------------------------------------------------------------------


def setup_django() -> None:
    """The test suite's settings, its database created in memory (as pytest-django would)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


# --- sections ----------------------------------------------------------------------------------


@section("client-auth", "client authentication")
def client_auth(args: argparse.Namespace) -> Result:
    """Known client_id with a wrong secret against an unknown client_id (``authenticate_client``).

    The known client is neither the oldest (the row an unknown id is checked
    against) nor fresh: clients were created before and after it, and it was
    used lately, as on a live site.
    """
    from django.test.utils import override_settings
    from django.utils import timezone

    from django_ciam_otp.auth import authenticate_client
    from django_ciam_otp.flows.provisioning import create_client
    from django_ciam_otp.models import OTPClient

    known_id, unknown_id = "bench-known-client-000001", "bench-unknown-client-0001"
    wrong_secret = "w" * 43  # as long as a real one (256 bits, URL-safe base64)
    for n in range(5):
        create_client(f"older {n}")
    create_client("known", client_id=known_id)
    for n in range(5):
        create_client(f"newer {n}")
    OTPClient.objects.update(last_used_at=timezone.now())

    def known() -> object:
        return authenticate_client(known_id, wrong_secret)

    def unknown() -> object:
        return authenticate_client(unknown_id, wrong_secret)

    from django.conf import settings

    ciam = {**settings.CIAM_OTP, "HASH_KEY_FALLBACKS": ["bench-previous-key"]}
    with override_settings(CIAM_OTP=ciam):
        if known() is not None or unknown() is not None:
            raise SystemExit("client-auth: a wrong secret was accepted")
        times_known, times_unknown = alternate(known, unknown, args.rounds)
    result = compare(
        "known client_id, wrong secret", times_known, "unknown client_id", times_unknown
    )
    result["note"] = ", 2 hash keys"
    return result


@section("reset", "reset_password with and without an account, over HTTP on the live stack")
def reset(args: argparse.Namespace) -> Result:
    """``POST /otp/send`` ``usage=reset_password``: an address with an account against one without.

    On the bench's live stack (``bench/stack.py``: PostgreSQL, Redis, a Redis
    broker, gunicorn, a Celery worker on loopback), as a caller would time it:
    the whole HTTP request, a new connection each. Both addresses get their
    code from the same client with an email quota (so the quota statement
    touches a row); per-recipient limits are off and the conversion monitor
    too, so every request is a full send (each resend also supersedes the
    previous token, for both alike).
    """
    import http.client

    from .stack import running_stack

    pairs = min(args.rounds, args.http_pairs)
    with running_stack(
        log=log, workers=2, OTP_EMAIL_RATE_LIMITS="", OTP_CONVERSION_MONITOR="false"
    ) as stack:
        stack.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            "get_user_model().objects.create_user('known', 'known@example.com')",
        )
        created = json.loads(
            stack.manage(
                "create_otp_client", "--name", "timing", "--email-quota", "100000000", "--json"
            )
        )
        import base64

        auth = (
            "Basic "
            + base64.b64encode(
                f"{created['client_id']}:{created['client_secret']}".encode()
            ).decode()
        )
        port = stack.web_port

        def send(email: str) -> Callable[[], object]:
            body = json.dumps({"usage": "reset_password", "email": email})
            headers = {"Content-Type": "application/json", "Authorization": auth}

            def call() -> object:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("POST", "/otp/send", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise SystemExit(f"reset: {email} answered {response.status}")
                    return response.status
                finally:
                    conn.close()

            return call

        times_known, times_unknown = alternate(
            send("known@example.com"), send("nobody@example.com"), pairs, warmup=100
        )
    result = compare("account", times_known, "no account", times_unknown)
    result["note"] = ", whole HTTP requests, real broker and worker"
    return result


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})",
    )
    parser.add_argument("--rounds", type=int, default=20_000, help="pairs of calls per section")
    parser.add_argument(
        "--http-pairs",
        type=int,
        default=2_000,
        help="at most this many pairs in sections that make HTTP requests (default 2000)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--list", action="store_true", help="name the sections and stop")
    args = parser.parse_args(argv)
    if args.list:
        for entry in SECTIONS.values():
            log(f"{entry.name}: {entry.title}")
        return
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        sys.exit(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")

    setup_django()
    import django

    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "django": django.get_version(),
        "sections": {},
    }
    for name in chosen:
        entry = SECTIONS[name]
        result = entry.run(args)
        results["sections"][name] = result
        log()
        for line in describe(entry.title, result):
            log(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        log(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
