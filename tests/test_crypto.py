"""Keyed hashes never raise on caller text, and keep every valid string's hash unchanged."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from django_ciam_otp import crypto

KEY = b"tests-hash-key"

# Every code point, lone surrogates included (``st.text()`` leaves them out).
any_text = st.lists(st.integers(min_value=0, max_value=0x10FFFF), max_size=30).map(
    lambda points: "".join(map(chr, points))
)


def strict_hash(purpose: str, value: str) -> str:
    """The hash as it was computed before surrogates were allowed (strict UTF-8)."""
    derived = hmac.new(KEY, b"django-ciam-otp:" + purpose.encode(), hashlib.sha256).digest()
    return hmac.new(derived, value.encode("utf-8"), hashlib.sha256).hexdigest()


@given(st.text())
def test_valid_text_hashes_as_before(value):
    """Stored hashes (tokens, codes, recipients, client secrets) keep matching."""
    assert crypto.keyed_hash(crypto.PURPOSE_RECIPIENT, value, key=KEY) == strict_hash(
        crypto.PURPOSE_RECIPIENT, value
    )


def test_known_answer():
    assert crypto.keyed_hash(crypto.PURPOSE_TOKEN, "+8613612345678", key=KEY) == strict_hash(
        crypto.PURPOSE_TOKEN, "+8613612345678"
    )


@given(any_text, any_text)
def test_any_text_hashes_and_compares_without_raising(a, b):
    assert len(crypto.keyed_hash(crypto.PURPOSE_CODE, a, key=KEY)) == 64
    assert crypto.constant_time_equals(a, b) == (a == b)


@given(any_text, any_text)
def test_distinct_text_never_shares_a_hash_input(a, b):
    if a != b:
        assert a.encode("utf-8", "surrogatepass") != b.encode("utf-8", "surrogatepass")


def test_surrogates_do_not_collide_with_the_text_they_resemble():
    # surrogateescape would map "\udcc3\udca9" to the bytes of "é"; surrogatepass does not.
    assert crypto.keyed_hash("p", "\udcc3\udca9", key=KEY) != crypto.keyed_hash("p", "é", key=KEY)
    # A surrogate pair written as two code points is not the character it would pair to.
    pair = "\ud83d\ude00"
    assert crypto.keyed_hash("p", pair, key=KEY) != crypto.keyed_hash("p", "\U0001f600", key=KEY)


def test_hash_matches_takes_surrogates():
    stored = crypto.keyed_hash(crypto.PURPOSE_CLIENT_SECRET, "\ud800secret")
    assert crypto.hash_matches(crypto.PURPOSE_CLIENT_SECRET, "\ud800secret", stored)
    assert not crypto.hash_matches(crypto.PURPOSE_CLIENT_SECRET, "\udc00secret", stored)
