"""``make attack-sim``: legitimate users and an SMS-pumping bot against the live example project.

    python -m bench.attack [--duration 150] [--legit-rate 2] [--verify-share 0.9]
                           [--bot-prefixes 4] [--bot-burst 10] [--bot-interval 2]
                           [--legit-blocks 0] [--proven-share 0] ...

The stack is the bench's (PostgreSQL, Redis cache + broker, gunicorn with 2
workers, a Celery worker), with the filebased SMS backend, so a legitimate
user reads the code from the message the worker wrote, exactly as a person
reads their phone. Every limit keeps the project's default (``conf.py``):
per number, per client, per IP, per prefix, and the conversion monitor. The
callers sit behind a simulated reverse proxy: each request carries its
caller's address in ``X-Forwarded-For``, which the per-IP limits count.

* **Legitimate users** arrive at random (Poisson, ``--legit-rate`` per
  second), each with their own number in a random block of the whole
  mainland numbering plan (``--legit-blocks N``: in N busy blocks;
  ``--legit-in-bot-prefixes`` puts some of them in the attacked blocks) and
  their own address; they send once and, with
  probability ``--verify-share``, type the code after a human delay
  (``--verify-delay``, seconds); of those who type nothing, ``--resend-share``
  ask for a new code 35 to 90 seconds later (and do not type that one either).
* **The bot** starts after ``--bot-start`` seconds and sends a burst of
  ``--bot-burst`` requests to adjacent numbers every ``--bot-interval``
  seconds (``--bot-concurrency`` at once), taking its ``--bot-prefixes``
  blocks in turn, from ``--bot-ips`` rotating addresses; it never verifies.
* **A site live for a month** (``--proven-share S``, issue 16; default 0: a
  new site, nothing vouched): before any traffic, the share ``S`` of the
  legitimate users' blocks is marked proven, as if people had verified codes
  there within ``PREFIX_MEMORY``: ``abuse.vouch_prefix(abuse.phone_prefix(n))``
  runs in one ``manage.py shell`` with the stack's settings, so the markers
  land in the stack's Redis cache (the simulation counts them there). The
  legitimate users' blocks are the ``--legit-blocks`` busy blocks; without
  that option, the distinct blocks of the legitimate numbers of the timeline
  (all planned up front from ``--seed``, so each user's block is known before
  the run). Which blocks are proven is drawn from ``--seed`` by an RNG of its
  own, so the timeline is the same for every ``S``. The bot's blocks are never
  vouched (it rents fresh ranges), nor are those of the legitimate users that
  ``--legit-in-bot-prefixes`` puts there.

Printed at the end: the bot's attempts and the messages delivered to its
numbers (the SMS files), legitimate sends refused (any answer but 200) and
verified; the targets of issue 7 are <= 5 % and <= 1 %. Also the codes sent
(accepted) and delivered to **unproven prefixes**, legitimate and bot apart: a
code's prefix (``PREFIX_LENGTH`` digits of E.164, read from the stack's
settings) is unproven if it was not vouched before the run and no code to a
number of that prefix had been verified (verify answered 200) before the send
request of that code started (a message is matched to its number's accepted
sends in order; an unmatched one is dated by its file's ``Date:``). Every 15 s
a progress line shows the sends so far, the bot's accepted ones and the
accepted sends to unproven prefixes; the JSON result keeps those lines in
``progress``. ``--settings`` tries other defaults (JSON merged into
``CIAM_OTP``), e.g. ``--settings '{"CONVERSION_MONITOR": {"MIN_SENDS": 5}}'``.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import json
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .phones import heads
from .stack import Stack, running_stack

CLIENT_ID, CLIENT_SECRET = "TENANT_CLIENT_ID", "TENANT_CLIENT_SECRET"
SOURCE = "MOCK_SMS_OTP_AUTH_SOURCE_ID"  # load_demo_data: 6 digits, valid 60 s
AUTH = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def log(message: str) -> None:
    print(message, flush=True)


def post(url: str, body: dict[str, Any], ip: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - loopback URL built here
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": AUTH, "X-Forwarded-For": ip},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except OSError as exc:
        return 0, {"error": type(exc).__name__}


class Inbox:
    """Codes the worker wrote (filebased SMS backend) by phone number, scanned on demand."""

    CODE = re.compile(r"\b(\d{4,10})\b")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen: set[str] = set()
        self.codes: dict[str, str] = {}
        self.count: collections.Counter[str] = collections.Counter()
        #: Unix time of each message by number (its ``Date:`` header, else the file's mtime).
        self.dates: dict[str, list[float]] = collections.defaultdict(list)
        self.lock = threading.Lock()

    def scan(self) -> None:
        if not self.directory.exists():
            return
        for path in sorted(self.directory.iterdir()):
            if path.name in self.seen:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except OSError:
                continue
            if not text.endswith("\n"):
                continue  # still being written
            head, _, body = text.partition("\n\n")
            to = head.splitlines()[0].removeprefix("To: ").strip()
            match = self.CODE.search(body)
            date = message_date(head, path)
            with self.lock:
                self.seen.add(path.name)
                self.count[to] += 1
                self.dates[to].append(date)
                if match:
                    self.codes[to] = match.group(1)

    def code_for(self, e164: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.scan()
            with self.lock:
                if e164 in self.codes:
                    return self.codes[e164]
            time.sleep(0.2)
        return None


def message_date(head: str, path: Path) -> float:
    for line in head.splitlines():
        if line.startswith("Date: "):
            try:
                return dt.datetime.fromisoformat(line.removeprefix("Date: ").strip()).timestamp()
            except ValueError:
                break
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


@dataclass
class Tally:
    legit_sends: int = 0
    legit_refused: collections.Counter[str] = field(default_factory=collections.Counter)
    legit_verify_tried: int = 0
    legit_verified: int = 0
    legit_verify_failed: collections.Counter[str] = field(default_factory=collections.Counter)
    bot_attempts: int = 0
    bot_accepted: int = 0
    bot_refused: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Accepted sends (200) to a prefix that was unproven when the request started.
    legit_accepted_unproven: int = 0
    bot_accepted_unproven: int = 0
    #: Legitimate sends refused although their prefix was proven when the request started.
    legit_refused_proven: int = 0
    #: Unix time each number's accepted send requests started, in order.
    accepted_at: dict[str, list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    #: Unix time the first verification of a code to each prefix was answered 200.
    verified_at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


# One `manage.py shell` with the stack's settings: vouches for the prefixes of the numbers
# given (a JSON list of E.164 numbers) and prints the prefix length and the prefixes.
VOUCH = """
import json
from django_ciam_otp import abuse
from django_ciam_otp.conf import otp_settings
prefixes = sorted({{abuse.phone_prefix(n) for n in json.loads({numbers!r})}})
for prefix in prefixes:
    abuse.vouch_prefix(prefix)
print("VOUCHED " + json.dumps({{"prefix_length": int(otp_settings.PREFIX_LENGTH),
                               "prefixes": prefixes}}))
"""


def vouch(stack: Stack, blocks: list[str]) -> tuple[int, list[str], int]:
    """Vouch for ``blocks`` in the stack's cache: (prefix length, prefixes, markers found).

    Also run with no blocks, to read the stack's ``PREFIX_LENGTH``.
    """
    numbers = json.dumps([f"+86{block}0000" for block in blocks])
    out = stack.manage("shell", "-c", VOUCH.format(numbers=numbers))
    line = next(x for x in reversed(out.splitlines()) if x.startswith("VOUCHED "))
    answer = json.loads(line.removeprefix("VOUCHED "))
    prefixes: list[str] = answer["prefixes"]
    wanted = {f"ciam_otp:conv:prefix:{p}:known" for p in prefixes}
    found = set()
    if wanted:  # the keys as the cache wrote them (after Django's KEY_PREFIX and version)
        for key in stack.cache.client().scan_iter(match="*ciam_otp:conv:prefix:*:known"):
            name = key.decode() if isinstance(key, bytes) else str(key)
            found.add(name[name.index("ciam_otp:conv:prefix:") :])
    return int(answer["prefix_length"]), prefixes, len(found & wanted)


def all_blocks() -> list[str]:
    return [f"{h}{b:02d}" for h in heads() for b in range(100)]


def simulate(stack: Stack, args: argparse.Namespace, sms_dir: Path) -> dict[str, Any]:
    rnd = random.Random(args.seed)  # noqa: S311 - a replayable simulation, not secrets
    blocks = all_blocks()
    bot_blocks = rnd.sample(blocks, args.bot_prefixes)
    bot_set = set(bot_blocks)
    send_url, verify_url = stack.url + "/otp/send", stack.url + "/otp/verify"
    inbox = Inbox(sms_dir)
    tally = Tally()
    bot_numbers: set[str] = set()
    used: set[str] = set()

    # --- the timeline, fixed before the run (so a seed replays the same shape) ---
    events: list[tuple[float, str, Any]] = []
    busy: list[str] = []
    if args.legit_blocks:  # legitimate users concentrated in a few busy blocks
        busy = rnd.sample([b for b in blocks if b not in bot_set], args.legit_blocks)
    t = rnd.expovariate(args.legit_rate)
    while t < args.duration:
        if rnd.random() < args.legit_in_bot_prefixes:
            block = rnd.choice(bot_blocks)
        elif busy:
            block = rnd.choice(busy)
        else:
            block = rnd.choice(blocks)
            while block in bot_set:
                block = rnd.choice(blocks)
        number = f"{block}{rnd.randrange(10000):04d}"
        while number in used:
            number = f"{block}{rnd.randrange(10000):04d}"
        used.add(number)
        ip = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        verify = rnd.random() < args.verify_share
        delay = rnd.uniform(*args.verify_delay)
        events.append((t, "legit", (number, ip, verify, delay)))
        if not verify and rnd.random() < args.resend_share and t + 90 < args.duration:
            # No code typed: some ask for a new one once the per-number limit allows.
            events.append((t + rnd.uniform(35, 90), "legit", (number, ip, False, 0.0)))
        t += rnd.expovariate(args.legit_rate)
    next_suffix = {b: rnd.randrange(0, 10000 - 2000) for b in bot_blocks}
    bot_ips = [f"172.16.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" for _ in range(args.bot_ips)]
    t, turn = args.bot_start, 0
    while t < args.duration and len(bot_numbers) < args.bot_max_attempts:
        block = bot_blocks[turn % len(bot_blocks)]
        turn += 1
        burst = []
        for _ in range(args.bot_burst):
            number = f"{block}{next_suffix[block] % 10000:04d}"
            next_suffix[block] += 1
            if number in used:
                continue
            used.add(number)
            bot_numbers.add("+86" + number)
            burst.append((number, rnd.choice(bot_ips)))
        events.append((t, "bot", burst))
        t += args.bot_interval
    events.sort(key=lambda e: e[0])

    # --- a site live for a month: that share of the legitimate users' blocks is proven ---
    if busy:
        legit_blocks = sorted(busy)
    else:  # the blocks of the planned legitimate numbers (the bot's are never vouched)
        legit_blocks = sorted({e[2][0][:7] for e in events if e[1] == "legit"} - bot_set)
    proven_rnd = random.Random(f"proven-{args.seed}")  # noqa: S311 - same timeline for every S
    proven_blocks = proven_rnd.sample(legit_blocks, round(args.proven_share * len(legit_blocks)))
    prefix_length, vouched_list, markers = vouch(stack, proven_blocks)
    vouched = set(vouched_list)
    if proven_blocks:
        log(
            f"proven: {len(proven_blocks)} of the legitimate users' {len(legit_blocks)} blocks "
            f"vouched for ({len(vouched)} prefixes, {markers} markers in the cache)"
        )
        if markers < len(vouched):
            log("  WARNING: not every marker is in the cache (NEW_PREFIX_NUMBERS 0? cache down?)")

    def prefix_of(e164: str) -> str:
        return e164.lstrip("+")[:prefix_length]

    def unproven(prefix: str, at: float) -> bool:
        """Not vouched before the run and no code to it verified before ``at`` (unix time)."""
        first = tally.verified_at.get(prefix)
        return prefix not in vouched and (first is None or first >= at)

    def legit(number: str, ip: str, verify: bool, delay: float) -> None:
        e164, sent_at = "+86" + number, time.time()
        status, body = post(
            send_url, {"usage": "login", "phone_number": number, "auth_source_id": SOURCE}, ip
        )
        with tally.lock:
            tally.legit_sends += 1
            new_prefix = unproven(prefix_of(e164), sent_at)
            if status != 200:
                tally.legit_refused[f"{status} {body.get('error', '')}"] += 1
                tally.legit_refused_proven += not new_prefix
                return
            tally.accepted_at[e164].append(sent_at)
            tally.legit_accepted_unproven += new_prefix
            if verify:
                tally.legit_verify_tried += 1
        if not verify:
            return
        time.sleep(delay)
        code = inbox.code_for(e164, timeout=15)
        if code is None:
            with tally.lock:
                tally.legit_verify_failed["no message arrived"] += 1
            return
        status, answer = post(
            verify_url,
            {"otp_token": body["otp_token"], "otp": code, "phone_number": number, "usage": "login"},
            ip,
        )
        with tally.lock:
            if status == 200:
                tally.legit_verified += 1
                tally.verified_at.setdefault(prefix_of(e164), time.time())
            else:
                tally.legit_verify_failed[f"{status} {answer.get('error', '')}"] += 1

    def bot_one(number: str, ip: str) -> None:
        e164, sent_at = "+86" + number, time.time()
        status, body = post(
            send_url, {"usage": "login", "phone_number": number, "auth_source_id": SOURCE}, ip
        )
        with tally.lock:
            tally.bot_attempts += 1
            if status == 200:
                tally.bot_accepted += 1
                tally.accepted_at[e164].append(sent_at)
                tally.bot_accepted_unproven += unproven(prefix_of(e164), sent_at)
            else:
                tally.bot_refused[f"{status} {body.get('error', '')}"] += 1

    log(
        f"timeline: {sum(1 for e in events if e[1] == 'legit')} legitimate sends, "
        f"{len(bot_numbers)} bot attempts in {sum(1 for e in events if e[1] == 'bot')} bursts "
        f"to blocks {', '.join('+86 ' + b for b in bot_blocks)}"
    )
    started = time.monotonic()
    progress_at = started + 15
    progress: list[dict[str, Any]] = []
    with (
        ThreadPoolExecutor(max_workers=args.threads) as pool,
        ThreadPoolExecutor(max_workers=args.bot_concurrency) as bot_pool,
    ):
        for at, kind, payload in events:
            wait = started + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if kind == "legit":
                pool.submit(legit, *payload)
            else:
                for number, ip in payload:
                    bot_pool.submit(bot_one, number, ip)
            if time.monotonic() > progress_at:
                progress_at += 15
                with tally.lock:
                    point = {
                        "seconds": round(time.monotonic() - started, 1),
                        "legit_sends": tally.legit_sends,
                        "legit_refused": sum(tally.legit_refused.values()),
                        "legit_verified": tally.legit_verified,
                        "bot_attempts": tally.bot_attempts,
                        "bot_accepted": tally.bot_accepted,
                        "legit_accepted_unproven": tally.legit_accepted_unproven,
                        "bot_accepted_unproven": tally.bot_accepted_unproven,
                    }
                progress.append(point)
                log(
                    f"  {point['seconds']:5.0f} s: legit {point['legit_sends']} sent, "
                    f"{point['legit_refused']} refused, {point['legit_verified']} verified; "
                    f"bot {point['bot_attempts']} attempts, {point['bot_accepted']} accepted; "
                    f"accepted to unproven prefixes: legit {point['legit_accepted_unproven']}, "
                    f"bot {point['bot_accepted_unproven']}"
                )
        log("  load over; waiting for the last verifications")
    elapsed = time.monotonic() - started

    # Let the worker finish every queued delivery, then count the messages.
    broker = stack.broker.client()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (broker.llen("celery") or broker.hlen("unacked")):
        time.sleep(0.2)
    time.sleep(1)
    inbox.scan()
    delivered_bot = sum(n for to, n in inbox.count.items() if to in bot_numbers)
    delivered_legit = sum(n for to, n in inbox.count.items() if to not in bot_numbers)
    # Messages to unproven prefixes: message k to a number was sent by its k-th accepted send.
    fresh = {"legit": 0, "bot": 0}
    fresh_prefixes: dict[str, set[str]] = {"legit": set(), "bot": set()}
    for to, dates in inbox.dates.items():
        kind = "bot" if to in bot_numbers else "legit"
        sends = sorted(tally.accepted_at.get(to, []))
        for k, date in enumerate(sorted(dates)):
            if unproven(prefix_of(to), sends[k] if k < len(sends) else date):
                fresh[kind] += 1
                fresh_prefixes[kind].add(prefix_of(to))
    with stack.pg.connect() as conn:
        blocked = conn.execute(
            "SELECT prefix, reason FROM ciam_otp_blockedprefix WHERE blocked_until > now()"
            " ORDER BY prefix"
        ).fetchall()
    refused = sum(tally.legit_refused.values())
    return {
        "args": {k: v for k, v in vars(args).items()},
        "seconds": elapsed,
        "bot_blocks": bot_blocks,
        "legit_sends": tally.legit_sends,
        "legit_refused": refused,
        "legit_refused_share": refused / tally.legit_sends if tally.legit_sends else 0.0,
        "legit_refused_by": dict(tally.legit_refused),
        "legit_verify_tried": tally.legit_verify_tried,
        "legit_verified": tally.legit_verified,
        "legit_verify_failed_by": dict(tally.legit_verify_failed),
        "legit_messages": delivered_legit,
        "bot_attempts": tally.bot_attempts,
        "bot_accepted": tally.bot_accepted,
        "bot_delivered": delivered_bot,
        "bot_delivered_share": delivered_bot / tally.bot_attempts if tally.bot_attempts else 0.0,
        "bot_refused_by": dict(tally.bot_refused),
        "blocked_prefixes": [{"prefix": p, "reason": r} for p, r in blocked],
        # issue 16: a site live for a month, and the codes to unproven prefixes
        "prefix_length": prefix_length,
        "legit_blocks": len(legit_blocks),
        "proven_blocks": len(proven_blocks),
        "vouched_prefixes": len(vouched),
        "vouched_markers_found": markers,
        "legit_accepted_unproven": tally.legit_accepted_unproven,
        "bot_accepted_unproven": tally.bot_accepted_unproven,
        "legit_delivered_unproven": fresh["legit"],
        "bot_delivered_unproven": fresh["bot"],
        "legit_unproven_prefixes_delivered": len(fresh_prefixes["legit"]),
        "bot_unproven_prefixes_delivered": len(fresh_prefixes["bot"]),
        "legit_refused_proven": tally.legit_refused_proven,
        "progress": progress,
    }


def report(r: dict[str, Any]) -> list[str]:
    a = r["args"]
    bot_ok = r["bot_delivered_share"] <= 0.05
    legit_ok = r["legit_refused_share"] <= 0.01
    return [
        "",
        f"=== attack simulation ({r['seconds']:.0f} s; settings: "
        f"{a['settings'] or 'project defaults'}) ===",
        f"legitimate: {r['legit_sends']} sends ({a['legit_rate']}/s), refused {r['legit_refused']} "
        f"({100 * r['legit_refused_share']:.2f} %) {r['legit_refused_by'] or ''}",
        f"            verified {r['legit_verified']} of {r['legit_verify_tried']} who tried "
        f"{r['legit_verify_failed_by'] or ''}",
        f"bot: {a['bot_prefixes']} blocks, bursts of {a['bot_burst']} every {a['bot_interval']} s "
        f"from {a['bot_ips']} addresses: {r['bot_attempts']} attempts, "
        f"{r['bot_accepted']} accepted",
        f"     refused {r['bot_refused_by']}",
        f"blocked prefixes: {', '.join(b['prefix'] for b in r['blocked_prefixes']) or 'none'}",
        f"messages delivered to the bot's numbers: {r['bot_delivered']} of {r['bot_attempts']} "
        f"attempts ({100 * r['bot_delivered_share']:.2f} %; target <= 5 %: "
        f"{'met' if bot_ok else 'NOT met'})",
        f"legitimate sends refused: {r['legit_refused']} of {r['legit_sends']} "
        f"({100 * r['legit_refused_share']:.2f} %; target <= 1 %: "
        f"{'met' if legit_ok else 'NOT met'})",
        f"proven before the run (--proven-share {a['proven_share']}): {r['proven_blocks']} of "
        f"the legitimate users' {r['legit_blocks']} blocks, {r['vouched_prefixes']} prefixes "
        f"({r['vouched_markers_found']} markers found in the cache)",
        f"codes to unproven prefixes ({r['prefix_length']} digits; not vouched, none verified "
        f"before the send): delivered legit {r['legit_delivered_unproven']} of "
        f"{r['legit_messages']} messages ({r['legit_unproven_prefixes_delivered']} prefixes), "
        f"bot {r['bot_delivered_unproven']} of {r['bot_delivered']} "
        f"({r['bot_unproven_prefixes_delivered']} prefixes); accepted legit "
        f"{r['legit_accepted_unproven']}, bot {r['bot_accepted_unproven']}",
        f"legitimate sends refused in proven prefixes: {r['legit_refused_proven']} of "
        f"{r['legit_refused']} refused",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="SMS-pumping attack simulation")
    parser.add_argument("--duration", type=float, default=150, help="seconds of traffic")
    parser.add_argument("--legit-rate", type=float, default=2.0, help="legitimate sends per second")
    parser.add_argument("--verify-share", type=float, default=0.9)
    parser.add_argument(
        "--verify-delay",
        type=float,
        nargs=2,
        default=(4.0, 25.0),
        metavar=("MIN", "MAX"),
        help="seconds a person takes to type the code",
    )
    parser.add_argument(
        "--resend-share",
        type=float,
        default=0.5,
        help="share of the users who typed no code that ask for a new one",
    )
    parser.add_argument(
        "--legit-blocks",
        type=int,
        default=0,
        help="draw legitimate numbers from this many busy blocks (0: the whole numbering plan)",
    )
    parser.add_argument(
        "--proven-share",
        type=float,
        default=0.0,
        help="share of the legitimate users' blocks vouched for before the run, as on a site "
        "live for a month (0: a new site)",
    )
    parser.add_argument(
        "--legit-in-bot-prefixes",
        type=float,
        default=0.0,
        help="share of legitimate users whose number is in an attacked block",
    )
    parser.add_argument("--bot-prefixes", type=int, default=4)
    parser.add_argument("--bot-burst", type=int, default=10, help="adjacent numbers per burst")
    parser.add_argument("--bot-interval", type=float, default=2.0, help="seconds between bursts")
    parser.add_argument("--bot-concurrency", type=int, default=5)
    parser.add_argument("--bot-start", type=float, default=10.0)
    parser.add_argument("--bot-ips", type=int, default=200, help="rotating source addresses")
    parser.add_argument("--bot-max-attempts", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--settings", default="", help="JSON merged into CIAM_OTP (try other defaults)"
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent.parent / "bench-results")
    )
    args = parser.parse_args()
    if args.duration > 600:
        sys.exit("--duration is capped at 600 s")
    if not 0.0 <= args.proven_share <= 1.0:
        sys.exit("--proven-share is a share, from 0 to 1")

    extra = {
        "BENCH_TRUST_X_FORWARDED_FOR": "1",
        "OTP_SMS_BACKEND": "django_ciam_otp.backends.sms.filebased.SMSBackend",
        "OTP_SMS_FILE_PATH": "{root}/sms",
    }
    if args.settings:
        json.loads(args.settings)  # fail early on bad JSON
        extra["BENCH_CIAM_OTP"] = args.settings
    with running_stack(log=log, load_test=False, **extra) as stack:
        result = simulate(stack, args, stack.root / "sms")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"attack-{time.strftime('%Y-%m-%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    log(f"\nresults written to {path}")
    for text in report(result):
        log(text)


if __name__ == "__main__":
    main()
