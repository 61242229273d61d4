"""``docs/sms/sns.md`` is true to the backend: its defaults, its errors, its check ids.

The settings section follows the convention of the other backends' pages
(``tests/docs/test_backend_settings.py``): a ``### AWS SNS settings`` heading
naming ``CIAM_OTP["SNS_SMS"]``, a ``Default:`` python block equal to
``conf.DEFAULTS``, and every entry explained in the prose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django_ciam_otp.backends.base import (
    BackendMisconfigured,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.sns import ERROR_CLASSES, SMSBackend
from django_ciam_otp.backends.sms.sns.conf import DEFAULTS, SETTINGS_KEY

PACKAGE = Path(__file__).resolve().parents[3] / "django_ciam_otp" / "backends" / "sms" / "sns"
PAGE = Path(__file__).resolve().parents[3] / "docs" / "sms" / "sns.md"
SECTION = "### AWS SNS settings"
OUTCOMES = {
    "retry": TransientDeliveryError,
    "give up": PermanentDeliveryError,
    "next backend": NotDeliverableHere,
    "stop": BackendMisconfigured,
}


def text() -> str:
    return PAGE.read_text(encoding="utf-8")


def section() -> str:
    assert SECTION in text(), f"{PAGE.name}: no {SECTION!r} section"
    body = text().split(SECTION, 1)[1]
    return re.split(r"^#{1,3} ", body, maxsplit=1, flags=re.M)[0]


def part(heading: str) -> str:
    body = text().split(f"## {heading}\n", 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.M)[0]


def test_the_section_names_the_backends_settings_key() -> None:
    assert SMSBackend.settings_key == SETTINGS_KEY
    assert f'`CIAM_OTP["{SETTINGS_KEY}"]`' in section()


def test_documented_defaults_are_the_backends_own() -> None:
    match = re.search(r"Default:\n\n```python\n(.*?)\n```", section(), flags=re.S)
    assert match, f"{PAGE.name}: {SECTION} has no 'Default:' python block"
    assert ast.literal_eval(match.group(1)) == DEFAULTS


def test_every_entry_is_explained() -> None:
    prose = re.sub(r"```.*?```", "", section(), flags=re.S)
    missing = [entry for entry in DEFAULTS if f"`{entry}`" not in prose]
    assert missing == [], f"{PAGE.name}: {SECTION} does not explain {missing}"


def test_the_error_table_is_the_backends() -> None:
    documented: dict[str, str] = {}
    for row in re.findall(r"^\| (`.+?) \| (.+?) \| .+ \|$", part("Errors"), flags=re.M):
        codes, outcome = row
        for code in re.findall(r"`([^`]+)`", codes):
            assert code not in documented, f"{code} is in the table twice"
            documented[code] = outcome
    assert {code: OUTCOMES[outcome] for code, outcome in documented.items()} == ERROR_CLASSES


def test_every_check_id_is_listed() -> None:
    source = "\n".join(path.read_text(encoding="utf-8") for path in PACKAGE.glob("*.py"))
    in_code = set(re.findall(r"\b(ciam_otp\.[EW]\d{3})\b", source))
    listed = set(re.findall(r"^\| `(ciam_otp\.[EW]\d{3})` \|", part("System checks"), re.M))
    assert in_code == listed
    assert len(in_code) == 10
