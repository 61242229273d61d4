"""Addresses that look like, or that a database folds onto, an ASCII account's address.

Each :class:`Lookalike` pairs an account's stored address with another
address a person could type. By this app's canonical form (NFC; the domain in
IDNA ASCII, lower case; the local part with only ASCII ``A``-``Z`` folded to
``a``-``z``) the two are DIFFERENT addresses: whoever controls the look-alike
must never get a code for the account, and must never log in as it.

``FOLDED_ONTO_ASCII`` lists look-alikes whose special character PostgreSQL's
``upper()`` or ``lower()`` (UTF-8 libc or ICU locale) maps onto ASCII
letters; ``test_database.py`` checks that the cluster's own list of such
characters is covered here (or, for the Kelvin sign, in ``SAME_ADDRESS``).
``CONFUSABLES`` are characters no case mapping touches but that look the same
on screen.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass

import idna
import pytest


@dataclass(frozen=True)
class Lookalike:
    name: str
    account: str  # the stored address of an existing account (ASCII)
    typed: str  # what the other person types

    @property
    def special(self) -> set[str]:
        """The non-ASCII characters of the typed address."""
        return {ch for ch in self.typed if not ch.isascii()}


FOLDED_ONTO_ASCII = [
    # PostgreSQL upper() under UTF-8 libc and ICU locales: ı -> I, ſ -> S.
    Lookalike("dotless i U+0131", "alice@example.com", "al\u0131ce@example.com"),
    Lookalike("dotless i, upper-case rest", "alice@example.com", "AL\u0131CE@EXAMPLE.COM"),
    Lookalike("long s U+017F", "sam@example.com", "\u017fam@example.com"),
    # glibc lower() folds İ -> i; Python's str.lower() gives i + U+0307.
    Lookalike("capital I with dot U+0130", "alice@example.com", "al\u0130ce@example.com"),
    # ICU upper() uses full case mapping: ß -> SS, ligatures -> their letters.
    Lookalike("sharp s U+00DF", "rossi@example.com", "ro\u00dfi@example.com"),
    Lookalike("ff ligature U+FB00", "office@example.com", "o\ufb00ice@example.com"),
    Lookalike("fi ligature U+FB01", "fish@example.com", "\ufb01sh@example.com"),
    Lookalike("fl ligature U+FB02", "flo@example.com", "\ufb02o@example.com"),
    Lookalike("ffi ligature U+FB03", "office@example.com", "o\ufb03ce@example.com"),
    Lookalike("ffl ligature U+FB04", "waffle@example.com", "wa\ufb04e@example.com"),
    Lookalike("long s t ligature U+FB05", "best@example.com", "be\ufb05@example.com"),
    Lookalike("st ligature U+FB06", "best@example.com", "be\ufb06@example.com"),
]

CONFUSABLES = [
    Lookalike("i + combining dot above", "alice@example.com", "ali\u0307ce@example.com"),
    Lookalike("full-width a U+FF41", "alice@example.com", "\uff41lice@example.com"),
    Lookalike("Cyrillic a U+0430", "alice@example.com", "\u0430lice@example.com"),
    Lookalike("Greek omicron U+03BF", "bob@example.com", "b\u03bfb@example.com"),
    Lookalike("small capital A U+1D00", "alice@example.com", "\u1d00lice@example.com"),
    Lookalike("small capital I U+026A", "alice@example.com", "al\u026ace@example.com"),
    Lookalike("mathematical bold a", "alice@example.com", "\U0001d41alice@example.com"),
    Lookalike("script g U+0261", "greg@example.com", "\u0261reg@example.com"),
    Lookalike("Cyrillic a in the domain", "alice@example.com", "alice@ex\u0430mple.com"),
]

FAMILY = FOLDED_ONTO_ASCII + CONFUSABLES


def family_params(family: list[Lookalike] = FAMILY) -> list[object]:
    return [pytest.param(lookalike, id=lookalike.name) for lookalike in family]


# The same address as the account's, written otherwise: ASCII case anywhere, or
# a canonically equivalent (NFC) spelling. The Kelvin sign U+212A is one: its
# canonical decomposition is the letter K (U+004B), so NFC turns it into ASCII
# before any folding (email-validator delivers to that NFC form too). Python's
# str.lower() and ICU/glibc lower() also fold it, so the code must still go to
# the account's stored address, never to the typed form.
SAME_ADDRESS = [
    pytest.param("alice@example.com", "ALICE@EXAMPLE.COM", id="all upper case"),
    pytest.param("alice@example.com", "Alice@Example.Com", id="capitalised"),
    pytest.param("alice@example.com", "alice@EXAMPLE.com", id="upper-case domain"),
    pytest.param("Alice.Smith@example.com", "alice.smith@EXAMPLE.COM", id="stored mixed case"),
    pytest.param("jos\u00e9@example.com", "jose\u0301@example.com", id="NFD of a stored NFC"),
    pytest.param("kate@example.com", "\u212aate@example.com", id="Kelvin sign U+212A (NFC: K)"),
]

ACCOUNT_PHONE = "+8613612345678"
# Every written form of ACCOUNT_PHONE: one E.164 number.
PHONE_FORMS = [
    pytest.param("13612345678", id="national"),
    pytest.param("136 1234 5678", id="spaced"),
    pytest.param("136-1234-5678", id="dashed"),
    pytest.param("+8613612345678", id="E.164"),
    pytest.param("+86 136 1234 5678", id="+86 spaced"),
    pytest.param("86 13612345678", id="86 prefix"),
    pytest.param("0086 136-1234-5678", id="0086 prefix"),
    pytest.param(
        "\uff11\uff13\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18", id="full-width"
    ),
]


def canonical_email(address: str) -> str:
    """The app's canonical form, written out here as the tests' oracle.

    NFC; the domain in IDNA ASCII, lower case; in the local part only ASCII
    ``A``-``Z`` folded (never ``str.lower()``, which turns ``İ`` into ``i̇``).
    """
    local, _, domain = unicodedata.normalize("NFC", address).rpartition("@")
    ascii_domain = idna.encode(domain, uts46=True).decode("ascii").lower()
    return f"{local.translate(_ASCII_FOLD)}@{ascii_domain}"


_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
