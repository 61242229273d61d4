"""``make bench``: the send path against the floor of its stack and against its peers, on loopback.

    python -m bench.run [--duration 4] [--sweep 1,4,8,16,32] [--connections 16]
                        [--old-rows 1000000] [--deliveries 1000] [--out bench-results]
                        [--rounds 3] [--peer-connections 8] [--peer-duration 10]
                        [--peer-users 100000] [--no-peers] [--peers-only]

One run (about six minutes on 2 cores), in this order, against PostgreSQL +
Redis (cache) + Redis (broker) + gunicorn (2 gthread workers) + a Celery
worker (locmem SMS backend), every load step bounded in time:

0. against the peers (issue 15, ``bench/compare.py``): ``--rounds``
   alternating rounds of the floor, this project's send with the worker
   paused (the web tier alone) and with the worker delivering, and each peer
   (``bench/peers``: django-allauth's headless code request, drfpasswordless's
   mobile endpoint as shipped and with the ``UPPER(mobile)`` index it lacks),
   each served by its own gunicorn with the same options on the same
   PostgreSQL; ``--no-peers`` keeps the floor and this project only,
   ``--rounds 0`` skips the step, ``--peers-only`` runs this step alone;
1. a concurrency sweep: ``POST /bench/baseline`` and ``POST /otp/send`` at
   each concurrency (wrk, closed loop, every request a distinct number);
2. the main comparison at ``--connections``, rounds baseline, send, send,
   baseline, with the server-side CPU each request cost (gunicorn, Celery,
   PostgreSQL, Redis, from /proc);
   then send again with the worker's consumer paused (the web tier alone, as
   with workers on other machines; the deliveries are drained afterwards);
3. send paced at half its peak rate (p50/p99);
4. SQL queries and Redis round-trips per send (in-process probe);
5. scale: send p50 at a fixed rate on an empty token table, with
   ``--old-rows`` old rows, and empty again;
6. deliveries per second of the Celery worker against a no-op task on the
   same worker and broker (rounds delivery, no-op, no-op, delivery);
7. RSS of the gunicorn workers.

Prints a summary, then the table against the peers; the last two lines are
``send/best-peer ratio (web tier): X`` and ``send/best-peer ratio (with
worker): Y`` (this project's median send/s over the best peer's, the peer with
the highest median send/s in the run). Writes every figure as JSON under
``--out`` (``bench/report.py`` turns runs into BENCHMARKS.md's table and the
plot); the peers' figures are under the key ``peers``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .celery_control import add_consumer, cancel_consumer
from .compare import compare
from .compare import summary as peers_summary
from .oldrows import insert_old_rows
from .peers import PEERS
from .stack import PYTHON, REPO, Stack, StackError, rss_mb, running_stack

LUA = REPO / "bench" / "wrk" / "otp.lua"
HEADS = REPO / "bench" / "data" / "cn_mobile_heads.txt"
CLIENT_ID, CLIENT_SECRET = "TENANT_CLIENT_ID", "TENANT_CLIENT_SECRET"  # load_demo_data
SEND, BASELINE, INSERT_FLOOR = "/otp/send", "/bench/baseline", "/bench/insert-floor"


def log(message: str) -> None:
    print(message, flush=True)


class Load:
    """Runs wrk; keeps every request's phone number distinct across the whole run."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.next_request = 0
        #: the next request's number of each peer's own numbering (``counter=``)
        self.counters: dict[str, int] = {}
        self.peer_users = 0
        auth = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        self.env = {**os.environ, "BENCH_HEADS": str(HEADS), "BENCH_AUTH": f"Basic {auth}"}

    def run(
        self,
        path: str,
        *,
        connections: int,
        duration: float,
        rate: float | None = None,
        url: str | None = None,
        script: Path = LUA,
        counter: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """wrk against ``url`` (this project's gunicorn) + ``path`` with ``script``.

        ``counter``: a numbering of its own (a peer's), else this project's.
        """
        threads = 1  # one event loop drives ~20k req/s; more would take CPU from the server
        env = {**self.env, "BENCH_THREADS": str(threads), **(extra_env or {})}
        env.pop("BENCH_RATE", None)
        first = self.next_request if counter is None else self.counters.get(counter, 0)
        if rate:
            env["BENCH_RATE"] = f"{rate:.3f}"
        argv = [
            shutil.which("wrk") or "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            (url or self.stack.url) + path,
            "--",
            str(first),
            str(threads),
        ]
        result = subprocess.run(  # noqa: S603
            argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
        if result.returncode:
            raise StackError(f"wrk failed ({result.returncode}): {result.stdout} {result.stderr}")
        stats: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        following = first + stats["requests"] + 10 * connections + 1000
        if counter is None:
            self.next_request = following
        else:
            self.counters[counter] = following
        seconds = stats["duration_us"] / 1e6
        errors = sum(
            stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
        )
        stats.update(
            path=path,
            connections=connections,
            rate=rate,
            rps=stats["requests"] / seconds,
            p50_ms=stats["p50_us"] / 1000,
            p99_ms=stats["p99_us"] / 1000,
            socket_errors=errors,
        )
        return stats


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Two rounds of one endpoint as one: total requests over total time, mean p50, worse p99."""
    total = {
        k: sum(r[k] for r in runs) for k in ("requests", "duration_us", "non2xx", "socket_errors")
    }
    return {
        **runs[0],
        **total,
        "rps": total["requests"] / (total["duration_us"] / 1e6),
        "p50_ms": statistics.mean(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "rounds": runs,
    }


def line(name: str, s: dict[str, Any]) -> str:
    paced = f" at {s['rate']:.0f}/s" if s.get("rate") else ""
    return (
        f"{name:<9} c={s['connections']:<3}{paced:<10} {s['rps']:8.1f} req/s"
        f"   p50 {s['p50_ms']:7.2f} ms"
        f"   p99 {s['p99_ms']:7.2f} ms   non-2xx {s['non2xx']}   socket errors {s['socket_errors']}"
    )


def in_stack(stack: Stack, module: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    env = {**stack.env, "BENCH_WORKER_NAME": stack.worker_name}
    result = subprocess.run(  # noqa: S603
        [PYTHON, "-m", module, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode:
        raise StackError(f"{module} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def wait_for_queue(stack: Stack, timeout: float = 60) -> None:
    """Let the worker finish the deliveries of the previous load run."""
    broker = stack.broker.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.llen("celery") == 0 and broker.hlen("unacked") == 0:
            return
        time.sleep(0.1)


def delivery_latency(stack: Stack, *, since: dt.datetime) -> dict[str, float]:
    """Percentiles of ``sent_at - created_at`` of the codes sent since ``since``, in ms.

    ``created_at`` is taken in the request before the token's transaction
    commits, ``sent_at`` once the backend accepted it: the wait in the outbox
    (or queue) plus the send itself, a little more than "queued -> backend called".
    """
    with stack.pg.connect() as conn:
        row = conn.execute(
            "SELECT count(*), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY d), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d) "
            "FROM (SELECT extract(epoch FROM sent_at - created_at) * 1000 AS d "
            "FROM ciam_otp_otptoken WHERE created_at >= %s AND sent_at IS NOT NULL) t",
            (since,),
        ).fetchone()
    count, p50, p99, worst = row
    return {
        "count": int(count),
        "p50": float(p50 or 0.0),
        "p99": float(p99 or 0.0),
        "max": float(worst or 0.0),
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            row.split(":", 1)[1].strip()
            for row in Path("/proc/cpuinfo").read_text().splitlines()
            if row.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        row for row in Path("/proc/meminfo").read_text().splitlines() if row.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem.split()[1]) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_before": os.getloadavg(),
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "args": vars(args),
    }
    t0 = time.monotonic()
    with running_stack(
        log=log,
        threads=args.threads,
        keep_alive=args.keep_alive,
        worker_concurrency=args.worker_concurrency,
        durable=not args.no_fsync,
    ) as stack:
        load = Load(stack)
        d = args.duration

        log("warm-up")
        for path in (BASELINE, SEND):
            load.run(path, connections=args.connections, duration=2)

        if args.rounds:
            peers = () if args.no_peers else PEERS
            log(
                f"against the peers: {args.rounds} rounds of "
                f"{args.peer_connections} connections x {args.peer_duration:g} s"
            )
            results["peers"] = compare(
                stack,
                load,
                rounds=args.rounds,
                connections=args.peer_connections,
                duration=args.peer_duration,
                peers=peers,
                peer_users=args.peer_users,
                threads=args.threads,
                keep_alive=args.keep_alive,
                log=log,
            )
            # The phases below start on an empty token table, as they did before this step.
            wait_for_queue(stack, timeout=120)
            with stack.pg.connect() as conn:
                conn.autocommit = True
                conn.execute("TRUNCATE ciam_otp_otptoken")
                conn.execute("VACUUM ANALYZE ciam_otp_otptoken")
        if args.peers_only:
            results["web_worker_rss_mb"] = [rss_mb(pid) for pid in stack.web_workers()]
            results["load_after"] = os.getloadavg()
            results["seconds"] = time.monotonic() - t0
            return results

        sweep: list[dict[str, Any]] = []
        if args.sweep:
            log("concurrency sweep (closed loop)")
            for c in args.sweep:
                for name, path in (("baseline", BASELINE), ("send", SEND)):
                    wait_for_queue(stack)
                    s = load.run(path, connections=c, duration=d)
                    s["name"] = name
                    sweep.append(s)
                    log("  " + line(name, s))
        results["sweep"] = sweep

        log(f"main comparison at {args.connections} connections (baseline, send, send, baseline)")
        rounds: dict[str, list[dict[str, Any]]] = {"baseline": [], "send": []}
        cpu: dict[str, dict[str, float]] = {"baseline": {}, "send": {}}
        for name in ("baseline", "send", "send", "baseline"):  # ABBA: cancels a linear drift
            wait_for_queue(stack)
            before = stack.cpu_snapshot()
            s = load.run(
                SEND if name == "send" else BASELINE, connections=args.connections, duration=d
            )
            wait_for_queue(stack)  # the deliveries of these sends are part of their cost
            for group, ms in stack.cpu_used(before, stack.cpu_snapshot()).items():
                cpu[name][group] = cpu[name].get(group, 0.0) + ms
            rounds[name].append(s)
            log("  " + line(name, s))
        for name, groups in cpu.items():
            requests = sum(r["requests"] for r in rounds[name])
            per_request = {g: ms / requests for g, ms in groups.items()}
            log(
                f"  server CPU per {name} request: {sum(per_request.values()):.2f} ms ("
                + ", ".join(
                    f"{g} {ms:.2f}" for g, ms in sorted(per_request.items(), key=lambda kv: -kv[1])
                )
                + ")"
            )
            cpu[name] = {**per_request, "total": sum(per_request.values())}
        results["cpu_ms_per_request"] = cpu
        base, send = (combine(rounds["baseline"]), combine(rounds["send"]))
        results["baseline"], results["send"] = base, send

        # The same send with the worker's consumer paused: the deliveries wait in
        # Redis and are drained afterwards. This is the web tier alone, as in
        # production where workers run on other machines; the main figure above
        # has the worker delivering on the same two cores as gunicorn.
        log("send with the worker paused (web tier alone; deliveries drained after)")
        broker_url = stack.env["CELERY_BROKER_URL"]
        paused_rounds = []
        for _ in range(2):
            wait_for_queue(stack)
            cancel_consumer(broker_url, stack.worker_name)
            try:
                s = load.run(SEND, connections=args.connections, duration=d)
            finally:
                add_consumer(broker_url, stack.worker_name)
            paused_rounds.append(s)
            log("  " + line("send", s))
        wait_for_queue(stack, timeout=120)
        results["send_worker_paused"] = combine(paused_rounds)
        peak = max([send["rps"]] + [s["rps"] for s in sweep if s["name"] == "send"])
        half = peak / 2
        log(f"send paced at half its peak ({peak:.0f} req/s)")
        wait_for_queue(stack)
        paced_from = dt.datetime.now(dt.UTC)
        paced = load.run(SEND, connections=max(8, args.connections), duration=d * 1.5, rate=half)
        wait_for_queue(stack, timeout=120)
        paced["delivery_latency_ms"] = delivery_latency(stack, since=paced_from)
        results["send_half_peak"] = {**paced, "peak_rps": peak}
        log("  " + line("send", paced))
        lat = paced["delivery_latency_ms"]
        log(
            f"  delivery latency (token created -> provider accepted) of those sends: "
            f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms "
            f"({lat['count']} codes)"
        )

        log("queries and round-trips per send (in-process, Django test client)")
        wait_for_queue(stack)
        profile = ["--profile", str(Path(args.profile).resolve())] if args.profile else []
        probe = in_stack(
            stack, "bench.probe", "200", str(2_000_000_000 + load.next_request), *profile
        )
        results["probe"] = probe
        log(
            f"  SQL queries per send: {probe['sql_per_send']:.1f}; Redis round-trips per send: "
            f"{probe['redis_cache_round_trips_per_send']:.1f} to the cache, "
            f"{probe['redis_broker_round_trips_per_send']:.1f} to the broker"
        )

        if args.old_rows:
            rate = min(half, args.scale_rate)
            log(
                f"scale: send p50 at {rate:.0f} req/s, empty token table vs "
                f"{args.old_rows:,} old rows"
            )

            def truncate() -> None:
                with stack.pg.connect() as conn:
                    conn.autocommit = True
                    conn.execute("TRUNCATE ciam_otp_otptoken")
                    conn.execute("VACUUM ANALYZE ciam_otp_otptoken")

            def measure(label: str) -> dict[str, Any]:
                load.run(SEND, connections=8, duration=2, rate=rate)  # warm-up
                wait_for_queue(stack)
                s = load.run(SEND, connections=8, duration=d * 2, rate=rate)
                log(f"  {label:<9}" + line("send", s))
                return s

            # empty, 1M rows, empty again (TRUNCATE): the ratio is taken against
            # the mean of the two empty runs, so a drift of the machine cancels.
            wait_for_queue(stack)
            truncate()
            empty = measure("empty:")
            wait_for_queue(stack)
            with stack.pg.connect() as conn:
                conn.autocommit = True
                client_pk = conn.execute(
                    "SELECT id FROM ciam_otp_otpclient WHERE client_id = %s", (CLIENT_ID,)
                ).fetchone()[0]
                seconds = insert_old_rows(conn, client_pk, args.old_rows)
                rows = conn.execute("SELECT count(*) FROM ciam_otp_otptoken").fetchone()[0]
            log(f"  inserted {args.old_rows:,} old rows in {seconds:.1f} s ({rows:,} rows now)")
            full = measure("1M rows:")
            wait_for_queue(stack)
            truncate()
            empty_again = measure("empty:")
            empty_p50 = (empty["p50_ms"] + empty_again["p50_ms"]) / 2
            results["scale"] = {
                "empty": {**empty, "p50_ms": empty_p50, "rounds": [empty, empty_again]},
                "old_rows": full,
                "rows": rows,
                "insert_seconds": seconds,
                "p50_ratio": full["p50_ms"] / empty_p50,
            }

        if args.deliveries:
            log(
                f"delivery throughput: 2 x {args.deliveries} deliveries vs "
                f"2 x {args.deliveries} no-op tasks"
            )
            wait_for_queue(stack)
            delivery = in_stack(stack, "bench.delivery", str(args.deliveries))
            results["delivery"] = delivery
            log(
                f"  deliveries {delivery['delivery_per_s']:.0f}/s ({delivery['delivered']} sent), "
                f"no-op tasks {delivery['noop_per_s']:.0f}/s"
            )

        results["web_worker_rss_mb"] = [rss_mb(pid) for pid in stack.web_workers()]
        results["load_after"] = os.getloadavg()
    results["seconds"] = time.monotonic() - t0
    return results


def summary(r: dict[str, Any]) -> list[str]:
    """The summary of the phases; the table against the peers (and its two ratio lines) last."""
    out = classic_summary(r) if "send" in r else []
    if "peers" in r:
        out += peers_summary(r["peers"])
    return out


def classic_summary(r: dict[str, Any]) -> list[str]:
    ratio = r["send"]["rps"] / r["baseline"]["rps"]
    out = ["", "=== summary (targets from issue 6) ==="]
    out.append(line("baseline", r["baseline"]))
    out.append(line("send", r["send"]))
    h = r["send_half_peak"]
    out.append(
        f"send p99 at half peak ({h['rate']:.0f} req/s): {h['p99_ms']:.2f} ms (target <= 25 ms: "
        f"{'met' if h['p99_ms'] <= 25 else 'NOT met'})"
    )
    if "delivery_latency_ms" in h:
        lat = h["delivery_latency_ms"]
        out.append(
            f"delivery latency p99 at half peak: {lat['p99']:.1f} ms (target <= 250 ms: "
            f"{'met' if lat['p99'] <= 250 else 'NOT met'})"
        )
    if "scale" in r:
        s = r["scale"]
        out.append(
            f"send p50 empty table {s['empty']['p50_ms']:.2f} ms, with {s['rows']:,} rows "
            f"{s['old_rows']['p50_ms']:.2f} ms: ratio {s['p50_ratio']:.2f} (target <= 1.15: "
            f"{'met' if s['p50_ratio'] <= 1.15 else 'NOT met'})"
        )
    if "delivery" in r:
        dlv = r["delivery"]
        out.append(
            f"delivery {dlv['delivery_per_s']:.0f}/s vs no-op task {dlv['noop_per_s']:.0f}/s: "
            f"ratio {dlv['ratio']:.2f} (target >= 0.5: "
            f"{'met' if dlv['delivery_per_s'] >= 0.5 * dlv['noop_per_s'] else 'NOT met'})"
        )
    rss = max(r["web_worker_rss_mb"])
    out.append(
        f"gunicorn worker RSS: {', '.join(f'{x:.0f}' for x in r['web_worker_rss_mb'])} MB "
        f"(target <= 80 MB: {'met' if rss <= 80 else 'NOT met'})"
    )
    p = r["probe"]
    out.append(
        f"per send: {p['sql_per_send']:.1f} SQL queries, "
        f"{p['redis_cache_round_trips_per_send']:.1f} "
        f"Redis round-trips (cache) + {p['redis_broker_round_trips_per_send']:.1f} (broker)"
    )
    if "send_worker_paused" in r:
        alone = r["send_worker_paused"]
        out.append(
            line("send, worker paused", alone)
            + f"; web tier alone / baseline: {alone['rps'] / r['baseline']['rps']:.2f}"
        )
    out.append(f"send/baseline target >= 0.6: {'met' if ratio >= 0.6 else 'NOT met'}")
    out.append(f"send/baseline throughput ratio: {ratio:.2f}")
    return out


def main() -> None:
    # A run stopped with SIGTERM (kill, a CI timeout) stops its servers too (running_stack's
    # finally): without this, Python would exit at once and leave them running.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description="django-ciam-otp send-path benchmark")
    parser.add_argument(
        "--duration", type=float, default=4, help="seconds per load step (main: x1.5)"
    )
    parser.add_argument(
        "--sweep", default="1,4,8,16,32", help="connection counts for the plot; '' to skip"
    )
    parser.add_argument(
        "--connections", type=int, default=16, help="connections of the main comparison"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="gthread threads per gunicorn worker"
    )
    parser.add_argument(
        "--keep-alive",
        type=int,
        default=0,
        help="gunicorn --keep-alive (0: one request per connection)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--old-rows", type=int, default=1_000_000)
    parser.add_argument("--scale-rate", type=float, default=50, help="max req/s of the scale runs")
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument(
        "--profile", help="also write a pyinstrument profile of 200 sends (HTML, and .txt beside)"
    )
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    parser.add_argument("--out", default=str(REPO / "bench-results"))
    peers = parser.add_argument_group("against the peers (issue 15)")
    peers.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of every target (0: skip)"
    )
    peers.add_argument("--peer-connections", type=int, default=8, help="wrk connections")
    peers.add_argument("--peer-duration", type=float, default=10, help="seconds per target")
    peers.add_argument(
        "--peer-users", type=int, default=100_000, help="users in each peer's database"
    )
    peers.add_argument(
        "--no-peers", action="store_true", help="the floor and this project only (no ratio lines)"
    )
    peers.add_argument(
        "--peers-only", action="store_true", help="this step alone (skip the sweep and the rest)"
    )
    args = parser.parse_args()
    if args.peers_only and not args.rounds:
        parser.error("--peers-only needs --rounds >= 1")
    if args.peer_users < 1000 and not args.no_peers and args.rounds:
        parser.error("--peer-users must be >= 1000 (allauth sends codes to existing users)")
    args.sweep = [int(x) for x in args.sweep.split(",") if x.strip()]
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    results = bench(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{results['started'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=1))
    log(f"\nresults written to {path} ({results['seconds']:.0f} s)")
    for text in summary(results):
        log(text)


if __name__ == "__main__":
    main()
