"""The suite's own Django process on a real PostgreSQL, for what SQLite cannot show.

The fast suite runs on SQLite, whose ``UPPER()`` and ``LIKE`` fold ASCII
letters only; PostgreSQL under a UTF-8 or ICU locale folds ``ı`` to ``I``,
``ſ`` to ``S`` and (ICU) ``ß`` to ``SS``. A look-up that trusts the database's
case folding can therefore find another person's account on PostgreSQL
alone. The tests here call the Python API, the authentication backend and
the views in this process, exactly as the fast suite does, with the
``default`` database on a throw-away PostgreSQL cluster
(:class:`tests.support.servers.PostgresServer`); pytest-django creates
its test database there, migrates it once, and rolls each test back.

The cluster's locale comes from ``CIAM_OTP_PG_LOCALE``:

* ``icu`` (default): ICU's root locale, ``und``. Its ``upper()`` uses full
  case mapping, so it folds the most characters onto ASCII (``ı ſ ß ﬀ ﬁ ﬂ ﬃ
  ﬄ ﬅ ﬆ``, and ``K`` in ``lower()``).
* ``libc``: glibc's ``C.UTF-8``, the common package default (``ı ſ`` in
  ``upper()``, ``İ K`` in ``lower()``).

``initdb --locale=C`` (what the integration suite uses) folds nothing but
ASCII and would hide the bug; ``test_database.py`` proves the cluster folds.

These tests need their own pytest session (the database is chosen once per
session): ``tests/conftest.py`` leaves this directory out of a plain
``pytest``; run ``pytest tests/postgres`` (``make test`` does).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import PostgresServer

HERE = Path(__file__).resolve().parent
LOCALE_ENV = "CIAM_OTP_PG_LOCALE"
# name -> (initdb --locale, ICU locale or None for the libc provider)
LOCALES: dict[str, tuple[str, str | None]] = {
    "icu": ("C.UTF-8", "und"),
    "libc": ("C.UTF-8", None),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a session that mixes these tests with the SQLite suite.

    The ``default`` database is chosen once per session; tests outside this
    directory would silently share whichever database came first.
    """
    if any(HERE in Path(item.path).parents for item in items):
        outside = [item.nodeid for item in items if HERE not in Path(item.path).parents]
        if outside:
            raise pytest.UsageError(
                "tests/postgres runs in its own pytest session (its database is PostgreSQL); "
                f"run it apart from {outside[0]} and the rest of the suite."
            )


def cluster_locale() -> tuple[str, str | None]:
    name = os.environ.get(LOCALE_ENV, "icu")
    if name not in LOCALES:
        raise pytest.UsageError(f"{LOCALE_ENV} must be one of {', '.join(LOCALES)}, not {name!r}")
    return LOCALES[name]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One cluster for the session (a missing ``initdb`` fails loudly, never skips)."""
    locale, icu_locale = cluster_locale()
    server = PostgresServer(locale=locale, icu_locale=icu_locale).start()
    yield server
    server.stop()


def use_default_database(database: dict[str, Any]) -> None:
    """Point Django's ``default`` alias at ``database`` before any test database exists.

    ``connections.settings`` is the ``settings.DATABASES`` dict with defaults
    filled in, computed once; dropping it and the ``default`` connection makes
    the next use build both from the new entry.
    """
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"] = database
    connections.__dict__.pop("settings", None)
    with contextlib.suppress(AttributeError):
        del connections["default"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_server: PostgresServer) -> None:
    """pytest-django's hook for changing ``DATABASES`` just before it creates the test database.

    Overridden (instead of ``django_db_setup``) so pytest-django still creates
    ``test_otp``, migrates it once and rolls each test back. No xdist suffix is
    needed: every process starts its own cluster.
    """
    use_default_database(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "otp",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": str(postgres_server.port),
        }
    )


@pytest.fixture(autouse=True)
def _non_ascii_local_parts_accepted(settings: Any) -> None:
    """The look-alike family lives before the @ too: accept it (off by default, SMTPUTF8)."""
    settings.CIAM_OTP = {**getattr(settings, "CIAM_OTP", {}), "EMAIL_ALLOW_SMTPUTF8": True}
