"""Turn several ``make bench`` runs into BENCHMARKS.md's table and the plot.

    python -m bench.report bench/results/bench-*.json [--plot bench/throughput.png]
                           [--peers-plot bench/peers.png]

Prints a Markdown table of min / median / max over the runs, and draws
throughput and p99 latency against concurrency for send and baseline
(median of the runs, bars from min to max). Runs measured against the peers
(issue 15) also give the table of every target (median over the runs of each
run's median over its rounds) and, with ``--peers-plot``, its bar chart.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Run = dict[str, Any]

METRICS: list[tuple[str, list[Callable[[Run], float]], str]] = [
    ("baseline throughput (req/s)", [lambda r: r["baseline"]["rps"]], ".0f"),
    ("send throughput (req/s)", [lambda r: r["send"]["rps"]], ".0f"),
    (
        "**send/baseline throughput ratio** (target >= 0.6)",
        [lambda r: r["send"]["rps"] / r["baseline"]["rps"]],
        ".3f",
    ),
    (
        "send throughput, worker paused: the web tier alone (req/s)",
        [lambda r: r.get("send_worker_paused", {}).get("rps", float("nan"))],
        ".0f",
    ),
    (
        "web tier alone / baseline",
        [lambda r: r.get("send_worker_paused", {}).get("rps", float("nan")) / r["baseline"]["rps"]],
        ".3f",
    ),
    (
        "baseline p50 / p99 at the main concurrency (ms)",
        [lambda r: r["baseline"]["p50_ms"], lambda r: r["baseline"]["p99_ms"]],
        ".1f",
    ),
    (
        "send p50 / p99 at the main concurrency (ms)",
        [lambda r: r["send"]["p50_ms"], lambda r: r["send"]["p99_ms"]],
        ".1f",
    ),
    ("send paced at half its peak: rate (req/s)", [lambda r: r["send_half_peak"]["rate"]], ".0f"),
    ("... p50 (ms)", [lambda r: r["send_half_peak"]["p50_ms"]], ".1f"),
    ("... **p99 (ms)** (target <= 25)", [lambda r: r["send_half_peak"]["p99_ms"]], ".1f"),
    ("send p50, empty token table (ms)", [lambda r: r["scale"]["empty"]["p50_ms"]], ".2f"),
    ("send p50, 1,000,000 old rows (ms)", [lambda r: r["scale"]["old_rows"]["p50_ms"]], ".2f"),
    ("**p50 ratio 1M rows / empty** (target <= 1.15)", [lambda r: r["scale"]["p50_ratio"]], ".3f"),
    (
        "deliveries per second (Celery, locmem backend)",
        [lambda r: r["delivery"]["delivery_per_s"]],
        ".0f",
    ),
    (
        "no-op tasks per second (same worker, same broker)",
        [lambda r: r["delivery"]["noop_per_s"]],
        ".0f",
    ),
    ("**delivery / no-op throughput** (target >= 0.5)", [lambda r: r["delivery"]["ratio"]], ".3f"),
    (
        "**gunicorn worker RSS, larger of the 2 (MB)** (target <= 80)",
        [lambda r: max(r["web_worker_rss_mb"])],
        ".1f",
    ),
    (
        "server CPU per request, baseline (ms)",
        [lambda r: r["cpu_ms_per_request"]["baseline"]["total"]],
        ".2f",
    ),
    (
        "server CPU per request, send (ms)",
        [lambda r: r["cpu_ms_per_request"]["send"]["total"]],
        ".2f",
    ),
    (
        "... of which gunicorn / Celery / PostgreSQL / Redis (ms)",
        [
            lambda r, g=g: r["cpu_ms_per_request"]["send"].get(g, 0.0)
            for g in ("gunicorn", "celery", "postgres", "redis")
        ],
        ".2f",
    ),
    ("SQL queries per send", [lambda r: r["probe"]["sql_per_send"]], ".1f"),
    (
        "Redis round-trips per send: cache / broker",
        [
            lambda r: r["probe"]["redis_cache_round_trips_per_send"],
            lambda r: r["probe"]["redis_broker_round_trips_per_send"],
        ],
        ".1f",
    ),
    (
        "against the peers: floor / this project web tier / with worker / best peer (send/s)",
        [
            lambda r: r["peers"]["targets"]["floor"]["sent_per_s"],
            lambda r: r["peers"]["targets"]["ours-web"]["sent_per_s"],
            lambda r: r["peers"]["targets"]["ours"]["sent_per_s"],
            lambda r: r["peers"]["targets"][r["peers"]["best_peer"]]["sent_per_s"],
        ],
        ".0f",
    ),
    (
        "**send/best-peer ratio, web tier** (target >= 1.5)",
        [lambda r: r["peers"]["ratio_web_tier"]],
        ".2f",
    ),
    (
        "**send/best-peer ratio, with worker** (target >= 1.0)",
        [lambda r: r["peers"]["ratio_with_worker"]],
        ".2f",
    ),
    ("wall time of the run (s)", [lambda r: r["seconds"]], ".0f"),
]


def table(runs: list[Run]) -> list[str]:
    out = [f"| figure ({len(runs)} runs) | min | median | max |", "| --- | ---: | ---: | ---: |"]
    for name, getters, fmt in METRICS:
        try:
            columns = [[get(r) for r in runs] for get in getters]
        except (KeyError, ZeroDivisionError):
            continue
        cells = [
            " / ".join(format(f(values), fmt) for values in columns)
            for f in (min, statistics.median, max)
        ]
        out.append(f"| {name} | {' | '.join(cells)} |")
    return out


def sweep(
    runs: list[Run], name: str, key: str
) -> tuple[list[int], list[float], list[float], list[float]]:
    by_c: dict[int, list[float]] = {}
    for run in runs:
        for point in run.get("sweep", []):
            if point["name"] == name:
                by_c.setdefault(point["connections"], []).append(point[key])
    cs = sorted(by_c)
    return (
        cs,
        [statistics.median(by_c[c]) for c in cs],
        [min(by_c[c]) for c in cs],
        [max(by_c[c]) for c in cs],
    )


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, color in (("baseline", "tab:gray"), ("send", "tab:blue")):
        for ax, key in ((ax1, "rps"), (ax2, "p99_ms")):
            cs, med, lo, hi = sweep(runs, name, key)
            if not cs:
                continue
            err = [
                [m - a for m, a in zip(med, lo, strict=True)],
                [b - m for m, b in zip(med, hi, strict=True)],
            ]
            label = "POST /otp/send" if name == "send" else "baseline (auth + parse + constant)"
            ax.errorbar(cs, med, yerr=err, marker="o", capsize=3, color=color, label=label)
    levels = sweep(runs, "send", "rps")[0]
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrent connections (wrk, closed loop)")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("requests / s")
    ax1.set_yscale("log")
    ax1.set_title("Throughput")
    ax2.set_ylabel("p99 latency (ms)")
    ax2.set_yscale("log")
    ax2.set_title("p99 latency")
    ax1.legend(loc="best", fontsize=8)
    machine = runs[0]["machine"]
    fig.suptitle(
        f"django-ciam-otp on {machine['cores']} cores ({machine['cpu']}), gunicorn 2 workers; "
        f"median of {len(runs)} runs, bars min-max",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def peer_targets(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Each target's label and, over the runs, its send/s, floor ratio and CPU per send."""
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        for name, t in run.get("peers", {}).get("targets", {}).items():
            row = found.setdefault(
                name, {"label": t["label"], "rps": [], "ratio": [], "cpu": [], "rounds": []}
            )
            row["rps"].append(t["sent_per_s"])
            row["rounds"].extend(t.get("sent_per_s_rounds", [t["sent_per_s"]]))
            row["ratio"].append(t["floor_ratio"])
            row["cpu"].append(t["cpu_ms_per_request"])
    return found


def peers_table(runs: list[Run]) -> list[str]:
    found = peer_targets(runs)
    if not found:
        return []
    n = sum(1 for r in runs if "peers" in r)
    out = [
        "",
        f"| target ({n} run{'s' if n > 1 else ''}, median of rounds) | send/s "
        "| send/s ÷ floor | server CPU per send (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in found.values():
        cells = [
            " / ".join(format(f(row[key]), fmt) for f in (min, statistics.median, max))
            if len(row[key]) > 1
            else format(row[key][0], fmt)
            for key, fmt in (("rps", ".0f"), ("ratio", ".3f"), ("cpu", ".2f"))
        ]
        out.append(f"| {row['label']} | {' | '.join(cells)} |")
    if n > 1:
        out.append("")
        out.append("(min / median / max over the runs)")
    return out


def plot_peers(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = peer_targets(runs)
    names = list(found)
    med = [statistics.median(found[n]["rps"]) for n in names]
    # whiskers: the slowest and the fastest round of every run
    lo = [m - min(found[n]["rounds"]) for m, n in zip(med, names, strict=True)]
    hi = [max(found[n]["rounds"]) - m for m, n in zip(med, names, strict=True)]
    colors = [
        "tab:gray"
        if n in ("floor", "insert-floor")
        else "tab:blue"
        if n.startswith("ours")
        else "tab:orange"
        for n in names
    ]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.barh(range(len(names)), med, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_yticks(range(len(names)), [found[n]["label"] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("sends / s (every request a new recipient)")
    ax.grid(True, axis="x", alpha=0.3)
    first = next(r for r in runs if "peers" in r)
    p = first["peers"]
    fig.suptitle(
        f"Against the peers on {first['machine']['cores']} cores: {p['connections']} connections x "
        f"{p['duration']:g} s, median of {p['rounds']} rounds, {len(runs)} run(s); "
        "whiskers: slowest and fastest round",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--peers-plot", type=Path, help="bar chart of the targets of issue 15")
    args = parser.parse_args()
    runs = [json.loads(p.read_text()) for p in args.runs]
    print("\n".join(table(runs) + peers_table(runs)))
    if args.plot:
        plot(runs, args.plot)
        print(f"\nplot written to {args.plot}")
    if args.peers_plot:
        plot_peers(runs, args.peers_plot)
        print(f"plot written to {args.peers_plot}")


if __name__ == "__main__":
    main()
