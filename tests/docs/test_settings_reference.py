"""The documentation cannot drift from the code: settings, check ids and the OpenAPI schema.

* ``docs/settings.md`` has one section per key of ``conf.DEFAULTS`` and no
  other, each showing that key's default (and naming every entry of a dict).
* Every ``ciam_otp.E0xx`` / ``W0xx`` id the docs or the README mention is one
  the app can report, and ``docs/checks.md`` lists every id the app can report.
* ``docs/openapi.yaml``, embedded in ``docs/http-api.md``, is the schema the
  app serves at ``/otp/schema``. After changing the API, regenerate it with
  ``CIAM_OTP_WRITE_DOCS_SCHEMA=1 pytest tests/docs/test_settings_reference.py``.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import yaml

from django_ciam_otp.backends.loading import shipped_backends
from django_ciam_otp.conf import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "django_ciam_otp"
SETTINGS_PAGE = DOCS / "settings.md"
CHECKS_PAGE = DOCS / "checks.md"
SCHEMA_FILE = DOCS / "openapi.yaml"

# Ids as the code spells them, and as prose does: "ciam_otp.W010", or "W010" alone
# (never another app's, such as "django_ratelimit.E003" or Django's "security.W004").
CODE_ID = re.compile(r"\bciam_otp\.([EW])(\d{3})\b")
CHECK_ID = re.compile(r"(?:\bciam_otp\.|(?<![\w.]))([EW])(\d{3})(?!\d)")
# Ranges: "`W010`–`W014`", "ciam_otp.E101–ciam_otp.E106".
CHECK_RANGE = re.compile(r"(?<!\w)([EW])(\d{3})`?\s*[–-]\s*`?(?:ciam_otp\.)?\1(\d{3})(?!\d)")


def documentation() -> dict[str, str]:
    pages = {path.relative_to(ROOT).as_posix(): path for path in sorted(DOCS.rglob("*.md"))}
    pages["README.md"] = ROOT / "README.md"
    if (ROOT / "CONTRIBUTING.md").exists():
        pages["CONTRIBUTING.md"] = ROOT / "CONTRIBUTING.md"
    return {name: path.read_text(encoding="utf-8") for name, path in pages.items()}


# --- settings -----------------------------------------------------------------


def setting_sections() -> dict[str, str]:
    """``{key: section text}`` for each ``### `KEY` `` heading of the settings page."""
    text = SETTINGS_PAGE.read_text(encoding="utf-8")
    parts = re.split(r"^#{2,3} (.*)$", text, flags=re.M)
    sections: dict[str, str] = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        match = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", heading.strip())
        if match:
            assert match.group(1) not in sections, f"{match.group(1)} documented twice"
            sections[match.group(1)] = body
    return sections


def documented_default(key: str, body: str) -> object:
    match = re.search(r"^Default: `(.+)`$", body, flags=re.M) or re.search(
        r"^Default:\n\n```python\n(.*?)\n```$", body, flags=re.M | re.S
    )
    assert match, f"settings.md: {key} has no 'Default: `...`' line or python block"
    return ast.literal_eval(match.group(1))


def test_every_setting_is_documented_and_nothing_else():
    documented = set(setting_sections())
    assert sorted(set(DEFAULTS) - documented) == [], "keys of conf.DEFAULTS missing in settings.md"
    assert sorted(documented - set(DEFAULTS)) == [], "settings.md documents keys conf lacks"


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_documented_default_is_the_real_one(key):
    sections = setting_sections()
    if key not in sections:
        pytest.skip("reported by test_every_setting_is_documented_and_nothing_else")
    assert documented_default(key, sections[key]) == DEFAULTS[key]


@pytest.mark.parametrize("key", sorted(k for k, v in DEFAULTS.items() if isinstance(v, dict)))
def test_every_entry_of_a_dict_setting_is_explained(key):
    body = setting_sections().get(key, "")
    prose = re.sub(r"```.*?```", "", body, flags=re.S)
    missing = [entry for entry in DEFAULTS[key] if f"`{entry}`" not in prose]
    assert missing == [], f"settings.md: {key} does not explain {missing}"


def test_readme_settings_table_names_real_keys_and_links_the_reference():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (`[A-Z].*?) \|", section, flags=re.M)
    named = {key for row in rows for key in re.findall(r"`([A-Z][A-Z0-9_]*)`", row)}
    assert named, "README: no settings table"
    # The core's keys, and the keys the shipped backends keep their own settings in.
    backend_keys = {cls.settings_key for cls in shipped_backends() if cls.settings_key}
    assert sorted(named - set(DEFAULTS) - backend_keys) == []
    assert "https://django-ciam-otp.readthedocs.io/en/latest/settings/" in section


# --- system check ids -----------------------------------------------------------------


def ids_in_code() -> set[str]:
    """Every check id the package can report.

    ``checks.py`` builds ids with ``_error(message, number)`` / ``_warning(...)``;
    backends spell them out (``id="ciam_otp.E101"``) in their own modules, which
    their ``check()`` hook runs: every module of the package is read.
    """
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = path.read_text(encoding="utf-8")
        found.update(f"ciam_otp.{level}{number}" for level, number in CODE_ID.findall(source))
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_error", "_warning")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and type(node.args[1].value) is int
            ):
                level = "E" if node.func.id == "_error" else "W"
                found.add(f"ciam_otp.{level}{node.args[1].value:03d}")
    return found


def ids_in(text: str) -> set[str]:
    found = {f"ciam_otp.{level}{number}" for level, number in CHECK_ID.findall(text)}
    for level, first, last in CHECK_RANGE.findall(text):
        found.update(f"ciam_otp.{level}{n:03d}" for n in range(int(first), int(last) + 1))
    return found


def test_the_code_reports_check_ids():
    code = ids_in_code()
    assert {"ciam_otp.E001", "ciam_otp.W010", "ciam_otp.E101"} <= code


@pytest.mark.parametrize("name", sorted(documentation()))
def test_every_check_id_in_the_docs_exists(name):
    text = documentation()[name]
    assert sorted(ids_in(text) - ids_in_code()) == [], f"{name} names check ids the app lacks"


def test_checks_page_lists_every_check_id():
    listed = set(re.findall(r"^\| `(ciam_otp\.[EW]\d{3})` \|", CHECKS_PAGE.read_text(), re.M))
    assert sorted(ids_in_code() - listed) == [], "checks.md misses check ids"


# --- OpenAPI schema -------------------------------------------------------------------


@pytest.mark.django_db
def test_embedded_openapi_schema_is_the_served_one(client):
    response = client.get("/otp/schema")
    assert response.status_code == 200
    served = yaml.safe_load(response.content)
    if os.environ.get("CIAM_OTP_WRITE_DOCS_SCHEMA"):
        SCHEMA_FILE.write_bytes(response.content)
    committed = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == served, (
        "docs/openapi.yaml is not the schema /otp/schema serves; regenerate it: "
        "CIAM_OTP_WRITE_DOCS_SCHEMA=1 pytest tests/docs/test_settings_reference.py"
    )


def test_http_api_page_embeds_the_schema_file():
    page = (DOCS / "http-api.md").read_text(encoding="utf-8")
    assert '--8<-- "openapi.yaml"' in page
