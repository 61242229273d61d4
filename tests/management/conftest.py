"""Running the scripting-contract commands as a deploy script does: argv in, status and output out.

``cli`` runs one in this process through ``run_from_argv`` (the path
``manage.py`` takes, with the test database); ``manage_py`` starts a real
``manage.py`` process for the few tests of the exit status and stderr a shell sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import load_command_class

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """``cli("create_auth_source", "--id", ...)``: as from a shell, without system checks.

    ``--skip-checks`` keeps the test settings' own check warnings off stderr;
    values are checked before the system checks anyway.
    """

    def run(name: str, *args: str) -> Run:
        capsys.readouterr()
        command = load_command_class("django_ciam_otp", name)
        try:
            command.run_from_argv(["manage.py", name, *args, "--skip-checks"])
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        else:
            status = 0
        out, err = capsys.readouterr()
        return Run(status, out, err)

    return run


def _environ(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "OTP_", "CELERY_"))
        and key not in ("DATABASE_URL", "REDIS_URL", "EMAIL_BACKEND")
    }
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def _manage(env: dict[str, str], *args: str) -> Run:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def manage_py_no_db() -> Callable[..., Run]:
    """``manage.py`` with the test settings and no tables: enough for usage errors."""
    env = _environ(DJANGO_SETTINGS_MODULE="tests.settings")
    return lambda *args: _manage(env, *args)


@pytest.fixture(scope="session")
def manage_py(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Run]:
    """``manage.py`` of the example project on a migrated SQLite file of its own."""
    database = tmp_path_factory.mktemp("manage_py") / "db.sqlite3"
    env = _environ(DATABASE_URL=f"sqlite:///{database}")
    migrate = _manage(env, "migrate", "--noinput", "-v", "0")
    assert migrate.status == 0, migrate.stderr
    return lambda *args: _manage(env, *args)
