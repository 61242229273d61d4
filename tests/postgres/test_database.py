"""The harness itself: the tests here really run on a PostgreSQL that folds beyond ASCII."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection

from .family import FAMILY, SAME_ADDRESS
from .lookups import find_by_iexact

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_default_database_is_postgresql() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone()[0] == "test_otp"


def test_the_database_folds_dotless_i_and_long_s_onto_ascii() -> None:
    """Under ``--locale=C`` these would be False and every look-alike test would pass vacuously."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT upper('\u0131') = 'I', upper('\u017f') = 'S', "
            "upper('al\u0131ce@example.com') = upper('alice@example.com')"
        )
        assert cursor.fetchone() == (True, True, True)


def test_every_character_the_database_folds_onto_ascii_is_in_the_family() -> None:
    """Whatever this cluster's ``upper()``/``lower()`` map onto ASCII letters is tested.

    As a look-alike (another address) or, when NFC already makes it ASCII
    (the Kelvin sign), as another spelling of the account's own address.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT chr(i) FROM generate_series(128, 1114111) AS i "
            "WHERE (i < 55296 OR i > 57343) "  # no surrogates
            "AND (upper(chr(i)) ~ '^[A-Za-z]+$' OR lower(chr(i)) ~ '^[A-Za-z]+$')"
        )
        folded = {row[0] for row in cursor.fetchall()}
    assert {"\u0131", "\u017f"} <= folded
    different = set().union(*(lookalike.special for lookalike in FAMILY))
    same = {ch for param in SAME_ADDRESS for ch in str(param.values[1]) if not ch.isascii()}
    assert folded - different - same == set()


def test_a_site_lookup_with_iexact_finds_the_ascii_account_for_a_lookalike() -> None:
    """The trap is live here: only the library's own check keeps alice's codes from alıce."""
    alice = User.objects.create_user("alice", email="alice@example.com")
    assert find_by_iexact("email", "al\u0131ce@example.com") == alice
    assert find_by_iexact("email", "\u017fam@example.com") is None
