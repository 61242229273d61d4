"""The README is the PyPI page: its order, and links that work there.

PyPI renders README.md away from the repository, so a relative link is a dead
link there: every link is absolute, and those to the docs site or to the
repository name a page or a file that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS_SITE = "https://django-ciam-otp.readthedocs.io/en/latest/"
REPOSITORY = "https://github.com/django-ciam-otp/django-ciam-otp/blob/main/"

LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>")


def links() -> list[str]:
    prose = re.sub(r"```.*?```", "", README, flags=re.S)  # code blocks hold no links
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return [inline or auto for inline, auto in LINK.findall(prose)]


def test_sections_in_order():
    sections = re.findall(r"^## (.+)$", README, flags=re.M)
    assert sections[:3] == ["Quickstart", "Developing", "HTTP API"]
    assert sections.index("Settings") > sections.index("Python API") > sections.index("HTTP API")


def test_every_link_is_absolute():
    found = links()
    assert found
    assert [link for link in found if not link.startswith("https://")] == []


def test_links_to_the_docs_name_existing_pages():
    pages = {link for link in links() if link.startswith(DOCS_SITE)}
    assert pages
    for link in pages:
        page = link.removeprefix(DOCS_SITE).split("#")[0].strip("/") or "index"
        assert (ROOT / "docs" / f"{page}.md").exists(), link
        assert link.split("#")[0].endswith("/"), f"{link}: pages are directories on the site"


def test_links_to_the_repository_name_existing_files():
    for link in links():
        if link.startswith(REPOSITORY):
            assert (ROOT / link.removeprefix(REPOSITORY)).exists(), link
