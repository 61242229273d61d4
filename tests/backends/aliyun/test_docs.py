"""The backend's page, ``docs/sms/aliyun.md``, cannot drift from the code.

Its settings section shows ``conf.DEFAULTS`` and explains each entry; its
error table names every code of ``errors.ERROR_CLASSES``; its checks table
lists every check id the package reports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django_ciam_otp.backends.sms.aliyun import ERROR_CLASSES, SMSBackend
from django_ciam_otp.backends.sms.aliyun.conf import DEFAULTS, SETTINGS_KEY

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "sms" / "aliyun.md"
PACKAGE = ROOT / "django_ciam_otp" / "backends" / "sms" / "aliyun"
SECTION = "### Alibaba Cloud SMS settings"


def text() -> str:
    return PAGE.read_text(encoding="utf-8")


def section() -> str:
    assert SECTION in text(), f"{PAGE.name}: no {SECTION!r} section"
    body = text().split(SECTION, 1)[1]
    return re.split(r"^#{1,3} ", body, maxsplit=1, flags=re.M)[0]


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


def test_every_error_code_is_in_the_tables() -> None:
    missing = [code for code in ERROR_CLASSES if f"`{code}`" not in text()]
    assert missing == [], f"{PAGE.name} does not say what {missing} mean"


def test_every_check_id_is_listed() -> None:
    source = "".join(path.read_text(encoding="utf-8") for path in PACKAGE.glob("*.py"))
    in_code = set(re.findall(r'"(ciam_otp\.[EW]\d{3})"', source))
    listed = set(re.findall(r"^\| `(ciam_otp\.[EW]\d{3})` \|", text(), flags=re.M))
    assert in_code == listed
    assert in_code == {f"ciam_otp.E{n}" for n in range(131, 140)} | {
        f"ciam_otp.W{n}" for n in range(131, 136)
    }


def test_the_receipts_url() -> None:
    assert "https://<your site>/otp/receipts/aliyun/?secret=<RECEIPT_SECRET>" in text()
