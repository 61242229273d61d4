"""django_ciam_otp.identity: one canonical form decides "same address", never a collation.

The PostgreSQL half of these questions (its UPPER() folds ``ı`` onto ``I``)
is in tests/postgres/; here the rule itself, and a look-up that folds as
much as any collation could, simulated in Python.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from hypothesis import given, settings
from hypothesis import strategies as st

from django_ciam_otp import identity
from django_ciam_otp.exceptions import MalformedEmail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _smtputf8(settings: Any) -> None:
    """Non-ASCII local parts are what identity must tell apart: accept them here."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_ALLOW_SMTPUTF8": True}


ASCII_LETTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _ascii_forms(char: str) -> list[str]:
    """What common foldings (case, compatibility, accents stripped) turn ``char`` into."""
    forms = [
        char.upper(),
        char.lower(),
        char.casefold(),
        unicodedata.normalize("NFKC", char).casefold(),
        unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode(),
    ]
    return [form.lower() for form in forms if form and set(form) <= ASCII_LETTERS]


def _folds_onto_ascii(char: str) -> bool:
    """Folds onto ASCII letters, yet is not canonically equivalent to one (the Kelvin sign is K)."""
    if set(unicodedata.normalize("NFC", char)) <= ASCII_LETTERS:
        return False
    return char not in ASCII_LETTERS and bool(_ascii_forms(char))


#: Every code point that some database or library folding maps onto ASCII
#: letters: ı ſ K Å ﬁ, full-width and mathematical letters, accented letters...
CONFUSABLES = [c for c in map(chr, range(0x80, sys.maxunicode + 1)) if _folds_onto_ascii(c)]


def test_the_confusable_family_is_large_and_has_the_known_members():
    assert len(CONFUSABLES) > 1000
    for char in ("ı", "ſ", "\u212b", "ﬁ", "ａ", "é", "İ"):
        assert char in CONFUSABLES
    assert "\u212a" not in CONFUSABLES  # the Kelvin sign is K (canonical equivalence)
    assert identity.same_address("email", "\u212aate@example.com", "kate@example.com")


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("alice@example.com", "alice@example.com"),
        ("ALICE@EXAMPLE.COM", "alice@example.com"),
        ("  Alice@Example.com ", "alice@example.com"),
        ("alice@ｅxample.com", "alice@example.com"),  # a domain folds as DNS does (UTS 46)
        ("alice@Bücher.DE", "alice@xn--bcher-kva.de"),
        ("a\u0301lice@example.com", "\u00e1lice@example.com"),  # NFC
        ("Älice@example.com", "Älice@example.com"),  # non-ASCII case is kept
        ("alıce@example.com", "alıce@example.com"),
        ("ſam@example.com", "ſam@example.com"),
    ],
)
def test_canonical_email(typed, canonical):
    assert identity.canonical_email(typed) == canonical


@pytest.mark.parametrize(
    "typed", ["+86 136 1234 5678", "8613612345678", "0086-136-1234-5678", "１３６１２３４５６７８"]
)
def test_every_written_form_of_a_number_is_one(typed):
    assert identity.canonical_phone(typed) == "+8613612345678"
    assert identity.same_address("sms", typed, "+8613612345678")


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20),
    st.lists(st.booleans(), min_size=20, max_size=20),
)
def test_ascii_case_never_matters(local, upper):
    mixed = "".join(c.upper() if up else c for c, up in zip(local, upper, strict=False))
    assert identity.same_address("email", f"{mixed}@Example.COM", f"{local}@example.com")


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
    st.data(),
)
def test_a_confusable_is_never_the_ascii_address(local, data):
    """Replace one letter of an ASCII address with anything that folds onto a letter."""
    position = data.draw(st.integers(0, len(local) - 1))
    char = data.draw(st.sampled_from(CONFUSABLES))
    lookalike = f"{local[:position]}{char}{local[position + 1 :]}@example.com"
    assert not identity.same_address("email", lookalike, f"{local}@example.com")


@settings(max_examples=300, deadline=None)
@given(st.emails())
def test_the_canonical_form_is_a_fixed_point(address):
    try:
        once = identity.canonical_email(address)
    except MalformedEmail:
        return
    assert identity.canonical_email(once) == once


@pytest.mark.parametrize(
    ("key", "limited"),
    [
        ("name+x@example.com", "name@example.com"),
        ("name+x+y@example.com", "name@example.com"),
        ("name@example.com", "name@example.com"),
        ("+x@example.com", "+x@example.com"),  # nothing before the tag: not a sub-address
    ],
)
def test_rate_limit_key_folds_a_plus_tag(key, limited):
    assert identity.rate_limit_key("email", key) == limited
    assert identity.rate_limit_key("sms", "+8613612345678") == "+8613612345678"


# --- finding users ----------------------------------------------------------------------


def folding_lookup(channel: str, key: str) -> list[Any]:
    """A look-up that folds more than any collation: every letter onto ASCII where it can."""

    def loose(text: str) -> str:
        return "".join((_ascii_forms(c) or [c.lower()])[0] for c in text)

    users = get_user_model().objects.all()
    return [u for u in users if loose(u.email) == loose(key)]


def test_a_lookup_that_folds_too_much_cannot_find_someone_else(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "USER_LOOKUP": "tests.test_identity.folding_lookup"}
    alice = get_user_model().objects.create(username="alice", email="alice@example.com")
    assert identity.find_user("email", identity.canonical_email("ALICE@example.com")) == alice
    i_lookalikes = [c for c in CONFUSABLES if "i" in _ascii_forms(c)]
    assert {"ı", "İ", "ｉ", "í", "ⅰ"} <= set(i_lookalikes)
    for char in i_lookalikes:
        lookalike = identity.canonical("email", f"al{char}ce@example.com")
        if lookalike is None:
            continue  # not an address at all
        assert folding_lookup("email", lookalike) == [alice]  # the look-up alone is fooled
        assert identity.find_user("email", lookalike) is None, char


def test_two_accounts_differing_in_ascii_case_are_ambiguous(caplog):
    model = get_user_model()
    model.objects.create(username="a", email="alice@example.com")
    model.objects.create(username="b", email="ALICE@example.com")
    assert identity.find_user("email", "alice@example.com") is None
    assert identity.is_used("email", "alice@example.com")
    assert "2 accounts share one email address" in caplog.text


def test_an_idn_domain_is_found_in_either_spelling():
    user = get_user_model().objects.create(username="b", email="bob@bücher.de")
    assert identity.find_user("email", identity.canonical_email("BOB@xn--bcher-kva.de")) == user


def test_stored_address_reads_the_configured_place(settings):
    user = get_user_model()(username="u", email="Stored@Example.com")
    assert identity.stored_address(user, "email") == "Stored@Example.com"
    assert identity.stored_address(user, "sms") is None
    settings.CIAM_OTP = {**settings.CIAM_OTP, "USER_PHONE_FIELD": "username"}
    user.username = "+8613612345678"
    assert identity.stored_address(user, "sms") == "+8613612345678"


def test_the_auth_backend_logs_into_no_one_when_an_address_is_ambiguous(
    api_client, email_source, settings, mailoutbox, django_capture_on_commit_callbacks
):
    import re

    from django.contrib.auth import authenticate

    from django_ciam_otp import send_otp

    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SITE_CLIENT_ID": api_client.client.client_id,
        "AUTO_SIGNUP": True,
    }
    model = get_user_model()
    model.objects.create(username="a", email="alice@example.com")
    model.objects.create(username="b", email="ALICE@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        sent = send_otp(
            api_client.client,
            usage="login",
            email="alice@example.com",
            auth_source_id="EMAIL_SOURCE",
        )
    code = re.findall(r"\b(\d{6})\b", mailoutbox[-1].body)[0]
    user = authenticate(None, otp_token=sent.otp_token, otp=code, email="alice@example.com")
    assert user is None
    assert model.objects.count() == 2  # and AUTO_SIGNUP made no third account
