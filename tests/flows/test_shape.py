"""The first step of a send or a verification: the arguments' shape, in the contract's order.

Shape errors come before content errors (a missing ``auth_source_id`` for a
login is ``invalid_request`` even when the phone number is also malformed),
and no value of any JSON type makes a step after this one see a non-string
or text that cannot be stored.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_ciam_otp.exceptions import InvalidRequest, MalformedPhoneNumber, OTPError
from django_ciam_otp.flows import shape

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


def send(**given_args: object) -> shape.SendRequest:
    args: dict[str, object] = {
        "usage": "signup",
        "phone_number": None,
        "email": None,
        "auth_source_id": None,
        "language": None,
    }
    args.update(given_args)
    return shape.parse_send(**args)


def test_a_send_is_normalised():
    ask = send(usage="login", phone_number="136 1234 5678", auth_source_id="SMS", language="en")
    assert ask == shape.SendRequest(
        "login", shape.parse_recipient("+8613612345678", None), "SMS", "en"
    )


def test_no_usage_means_login_which_an_empty_auth_source_id_does_not_satisfy():
    with pytest.raises(InvalidRequest, match="auth_source_id"):
        send(usage=None, email="a@example.com", auth_source_id="")


def test_shape_comes_before_content():
    with pytest.raises(InvalidRequest, match="auth_source_id"):
        send(usage="login", phone_number="not a number")
    with pytest.raises(MalformedPhoneNumber):
        send(usage="signup", phone_number="not a number")


@pytest.mark.parametrize(
    ("phone_number", "email"), [(None, None), ("13612345678", "a@example.com")]
)
def test_exactly_one_recipient(phone_number, email):
    with pytest.raises(InvalidRequest, match="exactly one"):
        send(phone_number=phone_number, email=email)


@pytest.mark.parametrize("field", ["usage", "phone_number", "email", "auth_source_id", "language"])
def test_a_lone_surrogate_is_refused_as_invalid_request(field):
    args = {"email": "a@example.com", field: "\ud800"}
    with pytest.raises(InvalidRequest, match=field):
        send(**args)


def test_a_language_longer_than_the_column_is_refused():
    with pytest.raises(InvalidRequest, match="language"):
        send(email="a@example.com", language="x" * (shape.LANGUAGE_MAX_LENGTH + 1))


@pytest.mark.parametrize(
    ("otp_token", "otp"),
    [("", "123456"), ("t", ""), (None, "1"), ("t", 123456), ("x" * 513, "1"), ("\ud800", "1")],
)
def test_a_verification_needs_a_token_and_a_code_as_text(otp_token, otp):
    with pytest.raises(InvalidRequest):
        shape.parse_verify(
            otp_token=otp_token, otp=otp, usage="signup", phone_number=None, email="a@example.com"
        )


@settings(max_examples=200, deadline=None)
@given(
    usage=json_values | st.sampled_from(["login", "signup", "update_userinfo", "reset_password"]),
    phone_number=json_values,
    email=json_values,
    auth_source_id=json_values,
    language=json_values,
)
def test_any_json_gives_a_send_request_or_a_contract_error(
    usage, phone_number, email, auth_source_id, language
):
    try:
        ask = shape.parse_send(
            usage=usage,
            phone_number=phone_number,
            email=email,
            auth_source_id=auth_source_id,
            language=language,
        )
    except OTPError:
        return
    assert ask.usage in shape.USAGES
    assert isinstance(ask.recipient.key, str)
    assert ask.auth_source_id is None or isinstance(ask.auth_source_id, str)
