"""What the sdist and the wheel carry, their metadata, and the changelog's form.

The sdist is the package plus README, LICENSE, CHANGELOG and pyproject.toml:
the tests need the repository (settings, conftest, servers), so they stay
there rather than ship in part. The wheel carries every file of the package
tree (templates, translations, static files, ``py.typed``), the licence, and
nothing else.
"""

from __future__ import annotations

import ast
import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO, Dists

pytestmark = pytest.mark.packaging

PACKAGE = REPO / "django_ciam_otp"
# Files of the repository's top level that the sdist carries besides the package;
# PKG-INFO, setup.cfg and the egg-info are written by setuptools.
SDIST_TOP_LEVEL = {"CHANGELOG.md", "LICENSE", "MANIFEST.in", "README.md", "pyproject.toml"}
SDIST_GENERATED = {"PKG-INFO", "setup.cfg", "django_ciam_otp.egg-info"}


def source_version() -> str:
    """``__version__`` as written in the package: the one place the version lives."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("django_ciam_otp/__init__.py has no `__version__ = '...'` line")


def package_files() -> set[str]:
    """Every file of the package tree in the repository, as a path inside the wheel."""
    return {
        path.relative_to(REPO).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_wheel_carries_the_whole_package_and_the_licence(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as archive:
        names = set(archive.namelist())
        dist_info = {n for n in names if ".dist-info/" in n}
        licence = [n for n in dist_info if n.endswith(".dist-info/licenses/LICENSE")]
        assert licence, f"no LICENSE in the wheel's dist-info: {sorted(dist_info)}"
        assert archive.read(licence[0]) == (REPO / "LICENSE").read_bytes()

    shipped = names - dist_info
    missing = package_files() - shipped
    assert not missing, f"files of the package missing from the wheel: {sorted(missing)}"
    extra = shipped - package_files()
    assert not extra, f"files in the wheel that are not the package's: {sorted(extra)}"
    for required in (
        "django_ciam_otp/py.typed",
        "django_ciam_otp/locale/zh_Hans/LC_MESSAGES/django.mo",
        "django_ciam_otp/templates/django_ciam_otp/email/message.html",
        "django_ciam_otp/templates/django_ciam_otp/sms/message.txt",
        "django_ciam_otp/static/django_ciam_otp/admin/ciam_otp_admin.css",
        "django_ciam_otp/migrations/0001_initial.py",
    ):
        assert required in shipped
    assert not [n for n in names if n.startswith(("tests/", "example_project/", "bench/"))]
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]


def test_wheel_metadata(dists: Dists) -> None:
    meta = wheel_metadata(dists.wheel)
    assert meta["Name"] == "django-ciam-otp"
    assert meta["Version"] == source_version()
    assert dists.wheel.name.startswith(f"django_ciam_otp-{source_version()}-")
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Description-Content-Type"].startswith("text/markdown")
    urls = dict(value.split(", ", 1) for value in meta.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Documentation", "Repository", "Changelog", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())
    requires = meta.get_all("Requires-Dist") or []
    # The quickstart's promise: a plain install needs neither Redis nor a Celery broker.
    assert not [r for r in requires if re.match(r"(redis|django-redis)\b", r) and "extra" not in r]


def test_sdist_is_the_package_and_its_documents(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
    root = dists.sdist.name.removesuffix(".tar.gz")
    assert root == f"django_ciam_otp-{source_version()}"
    relative = {n.removeprefix(root + "/") for n in names}
    top_level = {n.split("/", 1)[0] for n in relative}
    assert top_level == SDIST_TOP_LEVEL | SDIST_GENERATED | {"django_ciam_otp"}, (
        f"unexpected top level in the sdist: {sorted(top_level)}"
    )
    shipped = {n for n in relative if n.startswith("django_ciam_otp/")}
    assert shipped == package_files(), (
        f"missing: {sorted(package_files() - shipped)}, extra: {sorted(shipped - package_files())}"
    )


def test_twine_check_is_clean(dists: Dists) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.sdist), str(dists.wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_changelog_keeps_a_changelog() -> None:
    """Keep a Changelog 1.1: ``## [Unreleased]`` / ``## [x.y.z] - YYYY-MM-DD``, the six
    kinds of change as ``###`` headings, and a link reference for every version."""
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## (.*)$", text, flags=re.MULTILINE)
    assert versions and versions[0] == "[Unreleased]", versions[:1]
    for heading in versions[1:]:
        assert re.fullmatch(r"\[\d+\.\d+\.\d+[\w.+-]*\] - \d{4}-\d{2}-\d{2}", heading), heading
    kinds = set(re.findall(r"^### (.*)$", text, flags=re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds
    links = set(re.findall(r"^\[([^\]]+)\]: https://\S+$", text, flags=re.MULTILINE))
    named = {heading.split("]", 1)[0].lstrip("[") for heading in versions}
    assert named <= links, f"versions without a link reference: {sorted(named - links)}"
