"""Recipients are parsed into one canonical form, and anything else is a contract error.

``validators.py`` is what every send, verification, look-up and limit keys on,
so two properties matter most: every written form of one recipient gives the
same ``key``, and no text whatsoever makes it raise anything but the contract's
``malformed_*`` / ``invalid_email`` errors (a 400, never a 500).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_ciam_otp.exceptions import InvalidEmail, MalformedEmail, MalformedPhoneNumber, OTPError
from django_ciam_otp.validators import (
    deliverable_email,
    fold_local_part,
    normalize_email,
    normalize_phone_number,
)

PHONE = "+8613612345678"


@pytest.mark.parametrize(
    "typed",
    [
        "13612345678",
        "+86 136 1234 5678",
        "+86-136-1234-5678",
        "008613612345678",
        "８６１３６１２３４５６７８".join(["+", ""]),
        "  +8613612345678  ",
    ],
)
def test_every_written_form_of_a_mobile_number_is_its_e164(typed):
    recipient = normalize_phone_number(typed)
    assert (recipient.channel, recipient.key, recipient.address) == ("sms", PHONE, PHONE)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "1361234567",  # a digit short
        "+86 10 1234 5678",  # a Beijing landline, not a mobile
        "+86 136 CALL NOW",  # keypad letters are refused, not translated
        "+8613612345678" + "0" * 30,  # over the length limit
        "++8613612345678",
        "tel:+8613612345678",
    ],
)
def test_what_is_not_a_mobile_number_of_an_accepted_region_is_malformed(typed):
    with pytest.raises(MalformedPhoneNumber):
        normalize_phone_number(typed)


def test_a_valid_number_of_another_region_names_the_setting(settings):
    with pytest.raises(MalformedPhoneNumber) as refused:
        normalize_phone_number("+1 415 555 2671")
    assert "PHONE_REGIONS" in str(refused.value.description)


@pytest.mark.parametrize(
    ("typed", "key", "address"),
    [
        ("Alice@Example.COM", "alice@example.com", "Alice@example.com"),
        (" bob@example.com ", "bob@example.com", "bob@example.com"),
        ("carol@bücher.example", "carol@xn--bcher-kva.example", "carol@xn--bcher-kva.example"),
    ],
)
def test_an_email_is_keyed_by_its_folded_local_part_at_its_ascii_domain(typed, key, address):
    recipient = normalize_email(typed)
    assert (recipient.channel, recipient.key, recipient.address) == ("email", key, address)


@pytest.mark.parametrize("typed", ["", " ", "no-at-sign", "a@", "@example.com", "a@b@c.com"])
def test_what_is_not_an_address_is_malformed(typed):
    with pytest.raises(MalformedEmail):
        normalize_email(typed)


def test_a_non_ascii_local_part_needs_smtputf8(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_ALLOW_SMTPUTF8": False}
    with pytest.raises(MalformedEmail) as refused:
        normalize_email("jürgen@example.com")
    assert "EMAIL_ALLOW_SMTPUTF8" in str(refused.value.description)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_ALLOW_SMTPUTF8": True}
    assert normalize_email("jürgen@example.com").key == "jürgen@example.com"


@pytest.mark.parametrize(
    "entry", ["mailinator.example", "@mailinator.example", "MAILINATOR.example"]
)
@pytest.mark.parametrize("typed", ["x@mailinator.example", "x@sub.mailinator.example"])
def test_a_denied_domain_and_its_subdomains_are_invalid(settings, entry, typed):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_DOMAIN_DENYLIST": [entry]}
    with pytest.raises(InvalidEmail):
        normalize_email(typed)
    assert normalize_email("x@notmailinator.example").key == "x@notmailinator.example"


@pytest.mark.parametrize("entry", ["straße.example", "xn--strae-oqa.example"])
def test_a_denied_idn_domain_is_denied_in_the_form_addresses_are_keyed_by(settings, entry):
    """Entries are read as IDNA 2008, like addresses: IDNA 2003 would deny ``strasse.example``."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_DOMAIN_DENYLIST": [entry]}
    with pytest.raises(InvalidEmail):
        normalize_email("x@straße.example")
    assert normalize_email("x@strasse.example").key == "x@strasse.example"


def test_deliverable_email_keeps_the_local_part_and_uses_the_idna2008_domain():
    # IDNA 2003 (Python's codec) would send this to strasse.de, another domain.
    assert deliverable_email("Bob@straße.de") == "Bob@xn--strae-oqa.de"


@pytest.mark.parametrize(
    ("local", "folded"), [("ABC", "abc"), ("İx", "İx"), ("ſ", "ſ"), ("ﬁ", "ﬁ")]
)
def test_only_ascii_letters_fold(local, folded):
    assert fold_local_part(local) == folded


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=64))
def test_no_text_makes_the_phone_parser_raise_anything_but_the_contract(text):
    try:
        recipient = normalize_phone_number(text)
    except MalformedPhoneNumber:
        return
    assert recipient.key.startswith("+") and recipient.key[1:].isdigit()
    assert normalize_phone_number(recipient.key) == recipient  # a fixed point


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.emails().map(str))
def test_no_text_makes_the_email_parser_raise_anything_but_the_contract(text):
    try:
        recipient = normalize_email(text)
    except OTPError as error:
        assert isinstance(error, MalformedEmail | InvalidEmail)
        return
    assert normalize_email(recipient.key).key == recipient.key  # a fixed point
