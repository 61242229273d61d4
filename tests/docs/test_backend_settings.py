"""A backend's own settings are documented with the backend, true to its own defaults.

``docs/settings.md`` covers ``conf.DEFAULTS`` only (``test_settings_reference``);
each shipped backend with a settings dict (``CIAM_OTP["TENCENT_SMS"]``,
``["TWILIO_SMS"]``, …) is documented on its own page, under a "<provider>
settings" heading, against its ``conf.DEFAULTS``.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from django_ciam_otp.backends.loading import shipped_backends

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: settings key -> (the backend's package, its page, the section that documents the dict)
PAGES = {
    "TENCENT_SMS": ("tencent", "sms-backends.md", "### Tencent Cloud SMS settings"),
    "TWILIO_SMS": ("twilio", "sms/twilio.md", "### Twilio settings"),
    "ALIYUN_SMS": ("aliyun", "sms/aliyun.md", "### Alibaba Cloud SMS settings"),
    "SNS_SMS": ("sns", "sms/sns.md", "### AWS SNS settings"),
}


def section(page: str, heading: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert heading in text, f"{page}: no {heading!r} section"
    body = text.split(heading, 1)[1]
    return re.split(r"^#{1,3} ", body, maxsplit=1, flags=re.M)[0]


def conf_of(package: str) -> tuple[str, dict[str, object]]:
    conf = importlib.import_module(f"django_ciam_otp.backends.sms.{package}.conf")
    return conf.SETTINGS_KEY, conf.DEFAULTS


@pytest.mark.parametrize("key", sorted(PAGES))
def test_the_section_names_the_backends_settings_key(key: str) -> None:
    package, page, heading = PAGES[key]
    backend = importlib.import_module(f"django_ciam_otp.backends.sms.{package}").SMSBackend
    assert backend.settings_key == conf_of(package)[0] == key
    assert f'`CIAM_OTP["{key}"]`' in section(page, heading)


@pytest.mark.parametrize("key", sorted(PAGES))
def test_documented_defaults_are_the_backends_own(key: str) -> None:
    package, page, heading = PAGES[key]
    match = re.search(r"Default:\n\n```python\n(.*?)\n```", section(page, heading), flags=re.S)
    assert match, f"{page}: {heading} has no 'Default:' python block"
    assert ast.literal_eval(match.group(1)) == conf_of(package)[1]


@pytest.mark.parametrize("key", sorted(PAGES))
def test_every_entry_is_explained(key: str) -> None:
    package, page, heading = PAGES[key]
    prose = re.sub(r"```.*?```", "", section(page, heading), flags=re.S)
    missing = [entry for entry in conf_of(package)[1] if f"`{entry}`" not in prose]
    assert missing == [], f"{page}: {heading} does not explain {missing}"


def test_every_shipped_backend_key_has_a_page() -> None:
    keys = {cls.settings_key for cls in shipped_backends() if cls.settings_key}
    assert keys == set(PAGES)  # a new one needs a page and an entry above
