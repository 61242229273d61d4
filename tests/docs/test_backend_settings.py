"""A backend's own settings are documented with the backend, true to its own defaults.

``docs/settings.md`` covers ``conf.DEFAULTS`` only (``test_settings_reference``);
the Tencent backend's ``CIAM_OTP["TENCENT_SMS"]`` is documented on
``docs/sms-backends.md`` under "Tencent Cloud SMS settings", against
``backends.sms.tencent.conf.DEFAULTS``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django_ciam_otp.backends.loading import shipped_backends
from django_ciam_otp.backends.sms.tencent import SMSBackend
from django_ciam_otp.backends.sms.tencent.conf import DEFAULTS, SETTINGS_KEY

PAGE = Path(__file__).resolve().parents[2] / "docs" / "sms-backends.md"
SECTION = "### Tencent Cloud SMS settings"


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


def test_every_shipped_backend_key_is_documented_on_the_page() -> None:
    text = PAGE.read_text(encoding="utf-8")
    keys = {cls.settings_key for cls in shipped_backends() if cls.settings_key}
    assert keys == {SETTINGS_KEY}  # a new one needs a section (and a test) like this one
    assert all(f'CIAM_OTP["{key}"]' in text for key in keys)
