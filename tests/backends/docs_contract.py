"""What the provider backends' docs tests share: reading their page, finding check ids.

The settings section of each page (its key, its ``Default:`` block, each
entry explained) is held to the backend's ``conf.DEFAULTS`` once, for every
shipped backend, by ``tests/docs/test_backend_settings.py``; a backend's own
``test_docs.py`` keeps what is particular to its page (its error table, how it
lists its checks) and reads the page and the package through these helpers.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A check id as the code writes it (``checks.Error(..., id="ciam_otp.E131")``).
CHECK_ID = re.compile(r"\b(ciam_otp\.[EW]\d{3})\b")


def page(name: str) -> Path:
    """``docs/sms/<name>.md``."""
    return ROOT / "docs" / "sms" / f"{name}.md"


def package(name: str) -> Path:
    """The directory of the backend package ``django_ciam_otp.backends.sms.<name>``."""
    return ROOT / "django_ciam_otp" / "backends" / "sms" / name


def part(path: Path, heading: str) -> str:
    """The text under ``## heading`` of the page, up to the next ``## `` heading."""
    body = path.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.M)[0]


def check_ids_in_code(directory: Path) -> set[str]:
    """Every check id the modules of ``directory`` name (their docstrings included)."""
    found: set[str] = set()
    for path in directory.glob("*.py"):
        found.update(CHECK_ID.findall(path.read_text(encoding="utf-8")))
    return found
