"""``docs/sms/twilio.md`` cannot drift from the backend: its settings, defaults and check ids."""

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
from django_ciam_otp.backends.sms import twilio
from django_ciam_otp.backends.sms.twilio import ERROR_CLASSES, SMSBackend
from django_ciam_otp.backends.sms.twilio.conf import DEFAULTS, SETTINGS_KEY

PAGE = Path(__file__).resolve().parents[3] / "docs" / "sms" / "twilio.md"
SECTION = "### Twilio settings"
PACKAGE = Path(twilio.__file__).resolve().parent


def section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    assert SECTION in text, f"{PAGE.name}: no {SECTION!r} section"
    body = text.split(SECTION, 1)[1]
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


def test_every_check_id_is_listed_with_its_line() -> None:
    in_code = set()
    for path in PACKAGE.glob("*.py"):
        in_code.update(re.findall(r"ciam_otp\.[EW]\d{3}", path.read_text(encoding="utf-8")))
    listed = set(re.findall(r"^\* `(ciam_otp\.[EW]\d{3})`: ", PAGE.read_text(), flags=re.M))
    assert listed == in_code


OUTCOMES = {
    "Retry": TransientDeliveryError,
    "Give up": PermanentDeliveryError,
    "Next backend": NotDeliverableHere,
    "Stop this backend": BackendMisconfigured,
}


def test_the_page_s_table_is_the_backend_s() -> None:
    rows = re.findall(
        r"^\| (`\d{5}`(?:, `\d{5}`)*) \| [^|]+ \| ([^|(]+?)(?: \(.*\))? \|$",
        PAGE.read_text(),
        flags=re.M,
    )
    documented = {
        int(code): OUTCOMES[outcome].__name__
        for codes, outcome in rows
        for code in re.findall(r"\d{5}", codes)
    }
    assert documented == {code: cls.__name__ for code, cls in ERROR_CLASSES.items()}
