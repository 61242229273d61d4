"""The sdist and the wheel, built once per session the way a release builds them.

``python -m build`` makes the sdist from the repository, then the wheel from
the unpacked sdist, so a file the sdist forgets is missing from the wheel too.
The build backend comes from the package index into an isolated environment,
as on any machine that builds the project.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    if importlib.util.find_spec("build") is None:
        pytest.fail(
            "tests/packaging need `build` and `twine`: pip install -e '.[dev]'", pytrace=False
        )
    outdir = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"python -m build failed:\n{result.stdout}\n{result.stderr}"
    (sdist,) = outdir.glob("*.tar.gz")
    (wheel,) = outdir.glob("*.whl")
    return Dists(sdist=sdist, wheel=wheel)
