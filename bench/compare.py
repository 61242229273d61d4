"""Issue 15: this project's send against its peers and the floor, in the same run.

``bench/run.py`` calls :func:`compare` once the stack is up. It prepares the
peers (``bench/peers``: a database each on the bench's PostgreSQL, migrated,
filled with ``--peer-users`` users; a gunicorn each with the options of the
example project's), warms every target up, then runs ``--rounds`` rounds of
every target, ``--peer-connections`` wrk connections for ``--peer-duration``
seconds each, the order reversed every other round (so a drift of the
machine falls on every target alike):

* ``floor``: ``POST /bench/baseline``, the authenticated DRF no-op;
* ``insert-floor``: ``POST /bench/insert-floor``, the no-op plus one token row
  ``INSERT`` and committed: what storing a code durably costs, the bound no
  send (this project's or a peer's) can beat;
* ``ours-web``: ``POST /otp/send`` with the Celery worker's consumer paused:
  the web tier alone (the deliveries wait in the broker and are drained
  before the next target; their CPU is not counted);
* ``ours``: ``POST /otp/send`` with the worker delivering every code on the
  same two cores (its CPU until the queue is empty is counted);
* each peer (:data:`bench.peers.PEERS`), which sends inline.

Every request goes to a new recipient. Each target's figure is its median
over the rounds; the best peer is the peer with the highest median send/s.
Then the peers' SQL statements per request (``bench/peers/probe.py``), and
the peers' servers are stopped, so the phases after this one run as before.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .celery_control import add_consumer, cancel_consumer
from .peers import Peer
from .peers.setup import peer_env, prepare
from .stack import PYTHON, REPO, Stack, StackError

PEER_LUA = REPO / "bench" / "wrk" / "peer.lua"


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    # "floor", "insert-floor", "paused" (ours, web tier alone), "worker" (ours, delivering),
    # "peer"
    kind: str
    peer: Peer | None = None


OURS = (
    Target("floor", "floor (authenticated DRF no-op, POST /bench/baseline)", "floor"),
    Target(
        "insert-floor",
        "floor + one durable token INSERT (POST /bench/insert-floor)",
        "insert-floor",
    ),
    Target("ours-web", "this project, web tier alone (worker paused)", "paused"),
    Target("ours", "this project, Celery worker delivering on the box", "worker"),
)


def targets(peers: tuple[Peer, ...]) -> list[Target]:
    return [*OURS, *(Target(p.name, p.label, "peer", p) for p in peers)]


def run_target(
    stack: Stack, load: Any, target: Target, *, connections: int, duration: float
) -> dict[str, Any]:
    """One load run of ``target`` with the server-side CPU it cost (ms, per server group)."""
    from .run import BASELINE, INSERT_FLOOR, SEND, wait_for_queue

    broker_url = stack.env["CELERY_BROKER_URL"]
    wait_for_queue(stack, timeout=120)
    if target.kind == "paused":
        cancel_consumer(broker_url, stack.worker_name)
    before = stack.cpu_snapshot()
    try:
        if target.peer is not None:
            peer = target.peer
            s = load.run(
                peer.path,
                connections=connections,
                duration=duration,
                url=stack.peers[peer.name].url,
                script=PEER_LUA,
                counter=peer.name,
                extra_env={
                    "BENCH_KIND": peer.recipient,
                    "BENCH_RECIPIENTS": str(load.peer_users),
                    "BENCH_EXPECT_STATUS": str(peer.expect_status),
                    "BENCH_EXPECT_BODY": peer.expect_body,
                },
            )
        else:
            path = {"floor": BASELINE, "insert-floor": INSERT_FLOOR}.get(target.kind, SEND)
            s = load.run(path, connections=connections, duration=duration)
            s.setdefault("unexpected", s["non2xx"])
        if target.kind == "worker":
            wait_for_queue(stack, timeout=120)  # the deliveries of these sends are their cost
        after = stack.cpu_snapshot()
    finally:
        if target.kind == "paused":
            add_consumer(broker_url, stack.worker_name)
    if target.kind == "paused":
        wait_for_queue(stack, timeout=120)  # drained, uncounted, before the next target
    cpu = stack.cpu_used(before, after)
    seconds = s["duration_us"] / 1e6
    failed = s["unexpected"] + s["socket_errors"]
    requests = max(1, s["requests"])
    # What serves the target: a peer's own gunicorn, or this project's gunicorn and Celery
    # worker; PostgreSQL and Redis for all. The others idle (their few ticks are in cpu_ms).
    counted = [
        g
        for g in cpu
        if g in ("postgres", "redis")
        or (g == f"gunicorn:{target.name}" if target.peer else g in ("gunicorn", "celery"))
    ]
    s.update(
        target=target.name,
        failed=failed,
        sent_per_s=(s["requests"] - failed) / seconds,
        cpu_ms=cpu,
        cpu_ms_per_request={g: cpu[g] / requests for g in counted},
        cpu_ms_per_request_total=sum(cpu[g] for g in counted) / requests,
    )
    return s


def peer_probe(stack: Stack, peer: Peer, rounds: int, offset: int) -> dict[str, Any]:
    result = subprocess.run(  # noqa: S603
        [PYTHON, "-m", "bench.peers.probe", peer.name, str(rounds), str(offset)],
        env=peer_env(stack, peer),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode:
        raise StackError(f"peer probe {peer.name} failed:\n{result.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def compare(
    stack: Stack,
    load: Any,
    *,
    rounds: int,
    connections: int,
    duration: float,
    peers: tuple[Peer, ...],
    peer_users: int,
    threads: int,
    keep_alive: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rounds": rounds,
        "connections": connections,
        "duration": duration,
        "peer_users": peer_users,
        "peers": [p.name for p in peers],
    }
    load.peer_users = peer_users
    if peers:
        t0 = time.monotonic()
        out["setup"] = prepare(stack, peers, users=peer_users)
        for peer in peers:
            stack.start_peer(
                peer.name,
                peer_env(stack, peer),
                probe_path=peer.probe_path,
                probe_status=peer.probe_status,
                threads=threads,
                keep_alive=keep_alive,
            )
        log(
            f"  peers up in {time.monotonic() - t0:.1f} s ({', '.join(p.name for p in peers)}; "
            f"{peer_users:,} users each)"
        )
    every = targets(peers)
    try:
        for target in every:
            # Ours and the floor had theirs in the warm-up.
            if target.peer is not None or target.kind == "insert-floor":
                s = run_target(stack, load, target, connections=connections, duration=2)
                if s["failed"]:
                    raise StackError(
                        f"{target.name}: {s['failed']} of {s['requests']} answers did not send "
                        f"a code (e.g. {s.get('unexpected_sample', '')!r})"
                    )
        runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in every}
        for k in range(rounds):
            order = every if k % 2 == 0 else every[::-1]
            log(f"  round {k + 1} of {rounds}: {', '.join(t.name for t in order)}")
            for target in order:
                s = run_target(stack, load, target, connections=connections, duration=duration)
                runs[target.name].append(s)
                log(
                    f"    {target.name:<22} {s['sent_per_s']:8.1f} sent/s   p50 "
                    f"{s['p50_ms']:7.2f} ms   p99 {s['p99_ms']:7.2f} ms   CPU/request "
                    f"{s['cpu_ms_per_request_total']:5.2f} ms   failed {s['failed']}"
                )
        if peers:
            probes = {}
            for peer in peers:
                # allauth: the last users (they exist); drfpasswordless: numbers the load never
                # reaches (their 4-digit suffix is 5,751), so each still registers a new user.
                offset = peer_users - 60 if peer.recipient == "email" else 3_000_000_000
                probe = peer_probe(stack, peer, 50, offset)
                probes[peer.name] = probe
                plan = ""
                if "lookup_plan" in probe:
                    plan = "; look-up: " + probe["lookup_plan"][0].split("  (")[0].strip()
                log(
                    f"  {peer.name}: {probe['sql_per_request']:.1f} SQL statements per request, "
                    f"{probe['sent']} of {probe['requests']} sent in-process{plan}"
                )
            out["probe"] = probes
    finally:
        stack.stop_peers()

    floor = statistics.median(s["sent_per_s"] for s in runs["floor"])
    table: dict[str, Any] = {}
    for target in every:
        rs = runs[target.name]
        rps = statistics.median(s["sent_per_s"] for s in rs)
        table[target.name] = {
            "label": target.label,
            "kind": target.kind,
            "sent_per_s": rps,
            "sent_per_s_rounds": [s["sent_per_s"] for s in rs],
            "floor_ratio": rps / floor,
            "cpu_ms_per_request": statistics.median(s["cpu_ms_per_request_total"] for s in rs),
            "cpu_ms_per_request_by_group": {
                g: statistics.median(s["cpu_ms_per_request"].get(g, 0.0) for s in rs)
                for g in rs[0]["cpu_ms_per_request"]
            },
            "p50_ms": statistics.median(s["p50_ms"] for s in rs),
            "p99_ms": statistics.median(s["p99_ms"] for s in rs),
            "failed": sum(s["failed"] for s in rs),
        }
    out["runs"] = runs
    out["targets"] = table
    if peers:
        best = max(peers, key=lambda p: table[p.name]["sent_per_s"])
        best_rps = table[best.name]["sent_per_s"]
        out["best_peer"] = best.name
        out["ratio_web_tier"] = table["ours-web"]["sent_per_s"] / best_rps
        out["ratio_with_worker"] = table["ours"]["sent_per_s"] / best_rps
        # The most any send could reach: storing the code is all it would do.
        out["ratio_insert_floor"] = table["insert-floor"]["sent_per_s"] / best_rps
    return out


def summary(c: dict[str, Any]) -> list[str]:
    """The table and, last, the two ratio lines."""
    width = max(len(t["label"]) for t in c["targets"].values()) + 2
    out = [
        "",
        f"=== against the peers (issue 15): median of {c['rounds']} alternating rounds, "
        f"{c['connections']} connections x {c['duration']:g} s, a new recipient per request ===",
        f"{'target':<{width}} {'send/s':>8} {'÷ floor':>8} {'CPU/send':>9} {'p50':>7} {'p99':>7}"
        f" {'failed':>6}",
    ]
    for name, t in c["targets"].items():
        label = t["label"] + (" *" if name == c.get("best_peer") else "")
        out.append(
            f"{label:<{width}} {t['sent_per_s']:8.1f} {t['floor_ratio']:8.3f} "
            f"{t['cpu_ms_per_request']:6.2f} ms {t['p50_ms']:7.1f} {t['p99_ms']:7.1f} "
            f"{t['failed']:6d}"
        )
    out.append(
        "(* the best peer; send/s: answers that sent a code, per second; CPU/send: ms per request "
        "in the target's gunicorn (this project's: and its Celery worker), PostgreSQL and Redis; "
        "p50/p99 in ms)"
    )
    worker_ms = c["targets"]["ours"]["cpu_ms_per_request_by_group"].get("celery", 0.0)
    out.append(
        f"Celery worker CPU per delivered message: {worker_ms:.2f} ms (target <= 1.5 ms: "
        f"{'met' if worker_ms <= 1.5 else 'NOT met'})"
    )
    if "best_peer" in c:
        out.append(
            "insert-floor/best-peer ratio (the most any send could make): "
            f"{c['ratio_insert_floor']:.2f}"
        )
        out.append(f"send/best-peer ratio (web tier): {c['ratio_web_tier']:.2f}")
        out.append(f"send/best-peer ratio (with worker): {c['ratio_with_worker']:.2f}")
    else:
        out.append("send/best-peer ratio (web tier): n/a (--no-peers)")
        out.append("send/best-peer ratio (with worker): n/a (--no-peers)")
    return out
