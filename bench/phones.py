"""Distinct mainland mobile numbers spread over many number blocks.

The wrk script (``wrk/otp.lua``) and the attack simulation number requests
0, 1, 2, ... and turn request ``n`` into a phone number here. Consecutive
requests go to different 5-digit heads (``13612``, ``15807``, ...), then to
different 7-digit blocks under them, and only then to another number in the
same block, so a load run of ``N`` requests puts at most ``ceil(N / blocks)``
sends on any one block (prefix). The project's default prefix velocity limits
(``PREFIX_RATE_LIMITS``, 9 digits of E.164 = a 7-digit block) and the
conversion monitor then see load-test traffic as the spread-out traffic of
real users, and the bench keeps them on at their defaults.

``HEADS`` is the list of 5-digit heads whose numbers the project's own
validator (``normalize_phone_number``) accepts, sampled over each head's 100
blocks; ``python -m bench.phones --regenerate`` rebuilds ``data/cn_mobile_heads.txt``.
"""

from __future__ import annotations

import argparse
import os
import random
from functools import lru_cache
from pathlib import Path

HEADS_FILE = Path(__file__).resolve().parent / "data" / "cn_mobile_heads.txt"


@lru_cache(maxsize=1)
def heads() -> list[str]:
    return HEADS_FILE.read_text().split()


def blocks() -> int:
    """Number of distinct 7-digit blocks (prefixes) the numbering uses."""
    return len(heads()) * 100


def number(n: int) -> str:
    """The 11-digit national number of request ``n`` (same rule as ``wrk/otp.lua``)."""
    hs = heads()
    count = len(hs) * 100
    p, suffix = n % count, (n // count) % 10000
    return f"{hs[p % len(hs)]}{p // len(hs):02d}{suffix:04d}"


def block_of(national: str) -> str:
    """The 7-digit block of a national number (the default prefix without ``86``)."""
    return national[:7]


def regenerate() -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    import django

    django.setup()
    from django_ciam_otp.exceptions import MalformedPhoneNumber
    from django_ciam_otp.validators import normalize_phone_number

    rnd = random.Random(20240601)  # noqa: S311 - sampling, not secrets
    found = []
    for head in range(10000, 20000):
        try:
            for sub in range(0, 100, 7):
                for _ in range(3):
                    normalize_phone_number(f"{head}{sub:02d}{rnd.randrange(10000):04d}")
        except MalformedPhoneNumber:
            continue
        found.append(str(head))
    # Interleave the 3-digit ranges so neighbours in the list are far apart.
    rnd.shuffle(found)
    HEADS_FILE.write_text("\n".join(found) + "\n")
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    if args.regenerate:
        print(f"{len(regenerate())} heads written to {HEADS_FILE}")
    else:
        print(f"{len(heads())} heads, {blocks()} blocks; request 0 -> {number(0)}")
