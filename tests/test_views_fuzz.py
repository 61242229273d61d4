"""Property tests: any JSON body gets a 2xx/4xx answer in the contract's shape, never a 500.

The outside review found that a lone surrogate (JSON ``"\\ud800"``, which Python
decodes to an unencodable ``str``) in a verify body, or in a send body with an
``Idempotency-Key``, answered 500. These tests post arbitrary JSON, objects built
from the real field names with arbitrary values, and valid requests with a field
or two changed (a surrogate spliced in, other text, any JSON, or dropped) to both
endpoints, with and without the header, and drive ``send_otp``/``verify_otp``
directly the same way. Valid requests matter: most of the code runs only after
the shape checks pass (``pytest --hypothesis-show-statistics`` shows how far the
examples got).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from django_ciam_otp import flows
from django_ciam_otp.exceptions import OTPError

# Function-scoped fixtures (db, the API client) are shared by all examples of a test on
# purpose: each example only has to get a non-5xx answer, whatever earlier ones left behind.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

USAGES = ("login", "signup", "update_userinfo", "reset_password")
FIELDS = ("usage", "phone_number", "email", "auth_source_id", "otp_token", "otp")
SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff", "\udc80", "\ud83d")

# Every code point, lone surrogates included (``st.text()`` leaves category Cs out).
any_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.integers(min_value=0, max_value=0x10FFFF), max_size=40).map(
        lambda points: "".join(map(chr, points))
    ),
)


@st.composite
def with_surrogate(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A plausible value with a lone surrogate spliced in, so it gets past shape checks."""
    text = draw(base)
    at = draw(st.integers(min_value=0, max_value=len(text)))
    return text[:at] + draw(st.sampled_from(SURROGATES)) + text[at:]


# Stand-ins for a freshly issued otp_token, its code and its phone number (three ways
# written), swapped in by ``fill`` so that verifications get as far as the code check.
TOKEN = "@issued-token@"
CODE = "@issued-code@"
PHONE = "@issued-phone-e164@"
NATIONAL = "@issued-phone-national@"
TYPED = "@issued-phone-typed@"
STAND_INS = (TOKEN, CODE, PHONE, NATIONAL, TYPED)

fresh_phone = st.integers(min_value=0, max_value=10**8 - 1).map(lambda n: f"136{n:08d}")
fresh_email = st.integers(min_value=0, max_value=10**6).map(lambda n: f"u{n}@example.com")
plausible = st.one_of(
    fresh_phone,
    fresh_email,
    st.sampled_from(
        [
            *STAND_INS,
            "login",
            "signup",
            "update_userinfo",
            "reset_password",
            "13612345678",
            "+8613612345678",
            "+86 136-1234-5678",
            "user@example.com",
            "Ünïcødé@例え.jp",
            "SMS_SOURCE",
            "EMAIL_SOURCE",
            "123456",
            "x" * 43,
            "",
        ]
    ),
)
# One value in four carries a lone surrogate on purpose; the rest probe everything else.
text_value = st.one_of(
    plausible, plausible, any_text, with_surrogate(st.one_of(plausible, any_text))
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    text_value,
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(any_text, st.sampled_from(FIELDS)), children, max_size=4),
    ),
    max_leaves=12,
)
# Objects shaped like real requests: the contract's field names, arbitrary values.
field_object = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.one_of(text_value, text_value, json_value) for name in FIELDS},
        "extra": json_value,
    },
)


@st.composite
def mutated(
    draw: st.DrawFn, request: dict[str, Any], names: tuple[str, ...], *, text_only: bool = False
) -> dict[str, Any]:
    """``request`` with up to two fields changed: a lone surrogate spliced in, other text,
    any JSON value (unless ``text_only``), or the field dropped.
    """
    request = dict(request)
    ways = ["surrogate", "text", "drop"] + ([] if text_only else ["json"])
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        how = draw(st.sampled_from(ways))
        current = request.get(name)
        if how == "surrogate":
            request[name] = draw(
                with_surrogate(st.just(current if isinstance(current, str) else ""))
            )
        elif how == "text":
            request[name] = draw(text_value)
        elif how == "json":
            request[name] = draw(json_value)
        else:
            request.pop(name, None)
    return request


@st.composite
def send_request(draw: st.DrawFn, names: tuple[str, ...] = (*FIELDS, "extra"), **kw: Any) -> Any:
    """A valid send body (fresh recipient, so limits rarely stop it), maybe mutated."""
    usage = draw(st.sampled_from(USAGES))
    if draw(st.booleans()):
        request = {"usage": usage, "phone_number": draw(fresh_phone)}
        source = "SMS_SOURCE"
    else:
        request = {"usage": usage, "email": draw(fresh_email)}
        source = "EMAIL_SOURCE"
    if usage == "login":
        request["auth_source_id"] = source
    return draw(mutated(request, names, **kw))


@st.composite
def verify_request(draw: st.DrawFn, names: tuple[str, ...] = (*FIELDS, "extra"), **kw: Any) -> Any:
    """The issued token with its code (or a wrong one), for the issued phone, maybe mutated."""
    request = {
        "otp_token": TOKEN,
        "otp": draw(st.sampled_from([CODE, CODE, "000000", "１２３４５６"])),
        "phone_number": draw(st.sampled_from([PHONE, NATIONAL, TYPED])),
        "usage": "signup",
    }
    return draw(mutated(request, names, **kw))


body = st.one_of(
    json_value, field_object, send_request(), send_request(), verify_request(), verify_request()
)

valid_key = st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True)
# Header values reach Django as latin-1 text (WSGI); anything else cannot be sent.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)


@pytest.fixture
def issue(
    api_client: Any, django_capture_on_commit_callbacks: Any, sms_outbox: Any
) -> Callable[[], dict[str, str]]:
    """Issue a signup code to a number not used before; return what the stand-ins stand for.

    Each number in its own prefix (``PREFIX_LENGTH`` 9: ``86137nnnn``), so the prefix
    limits and the conversion monitor, which the fuzzing itself exercises, let it through.
    """
    numbers = iter(range(10**4))

    def issue() -> dict[str, str]:
        national = f"137{next(numbers):04d}5678"
        with django_capture_on_commit_callbacks(execute=True):
            result = flows.send_otp(api_client.client, usage="signup", phone_number=national)
        return {
            TOKEN: result.otp_token,
            CODE: sms_outbox[-1].code,
            PHONE: f"+86{national}",
            NATIONAL: national,
            TYPED: f"+86 {national[:3]}-{national[3:7]}-{national[7:]}",
        }

    return issue


def fill(payload: Any, issue: Callable[[], dict[str, str]]) -> Any:
    """Swap the stand-ins at the top level of ``payload`` for a freshly issued code's values."""
    if not isinstance(payload, dict):
        return payload
    if not any(isinstance(v, str) and v in STAND_INS for v in payload.values()):
        return payload
    try:
        issued = issue()
    except OTPError as exc:  # not the property under test: go on with the stand-ins unswapped
        event(f"could not issue: {exc.code}")
        return payload
    return {k: issued.get(v, v) if isinstance(v, str) else v for k, v in payload.items()}


def assert_contract_answer(response: Any) -> None:
    assert response.status_code < 500, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    # How deep the examples got (pytest --hypothesis-show-statistics).
    event(f"{response.status_code} {data.get('error', '') if isinstance(data, dict) else ''}")
    if response.status_code >= 400:
        assert isinstance(data, dict)
        assert isinstance(data.get("error"), str)


def _post(api: Any, api_client: Any, path: str, payload: Any, key: str | None) -> Any:
    raw = json.dumps(payload, ensure_ascii=True)  # surrogates travel as \ud800 escapes
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return api.post(path, raw, auth=api_client, **headers)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/otp/send", "/otp/verify"])
@FUZZ
@given(payload=body)
@example(payload={"usage": "signup", "phone_number": "136\ud80012345678"})
@example(payload={"otp_token": "\ud800", "otp": "123456", "phone_number": "13612345678"})
@example(payload={"otp_token": "t", "otp": "\udfff", "email": "user@example.com"})
@example(payload={"\ud800": 1, "usage": "signup", "email": "user@example.com"})
@example(payload={"otp_token": TOKEN, "otp": CODE, "phone_number": PHONE, "usage": "signup"})
def test_any_json_body_without_idempotency_key(api, api_client, sms_source, issue, path, payload):
    assert_contract_answer(_post(api, api_client, path, fill(payload, issue), None))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/otp/send", "/otp/verify"])
@FUZZ
@given(payload=body, key=st.one_of(valid_key, valid_key, header_text))
@example(payload={"usage": "signup", "phone_number": "13612345678", "x": "\ud800"}, key="k")
@example(payload={"usage": "signup", "email": "u@example.com", "\udc80": [None]}, key="k2")
@example(payload={"usage": "signup", "phone_number": "13612345678"}, key="k3")
def test_any_json_body_with_idempotency_key(api, api_client, sms_source, issue, path, payload, key):
    assert_contract_answer(_post(api, api_client, path, fill(payload, issue), key))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw", ['{"otp": "\\ud800"}', '{"usage": "\\udfff"}', '{"x": [{"\\ud83d": 1}]}']
)
def test_lone_surrogate_is_invalid_request(api, api_client, raw):
    for path in ("/otp/send", "/otp/verify"):
        for headers in ({}, {"HTTP_IDEMPOTENCY_KEY": "surrogate"}):
            response = api.post(path, raw, auth=api_client, **headers)
            assert response.status_code == 400
            assert response.json()["error"] == "invalid_request"
            assert "surrogate" in response.json()["error_description"]


@pytest.mark.django_db
def test_escaped_surrogate_pair_is_one_character(api, api_client):
    """A *paired* escape is ordinary text (U+1F600): refused for its content, not its encoding."""
    response = api.send({"usage": "signup", "phone_number": "\U0001f600"}, auth=api_client)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_phone_number"


# --- the Python API -----------------------------------------------------------------------------

SEND_ARGS = ("usage", "phone_number", "email", "auth_source_id")
VERIFY_ARGS = ("otp_token", "otp", "phone_number", "email", "usage")


def call_send(client: Any, args: dict[str, Any]) -> None:
    try:
        flows.send_otp(client, **args)
    except OTPError as exc:
        event(exc.code)
    else:
        event("ok")


@pytest.mark.django_db
@FUZZ
@given(
    args=send_request(SEND_ARGS, text_only=True)
    | st.fixed_dictionaries({}, optional=dict.fromkeys(SEND_ARGS, text_value))
)
@example(args={"usage": "signup", "phone_number": "1361234\ud8005678"})
@example(args={"usage": "login", "phone_number": "13612345678", "auth_source_id": "\udc80"})
def test_send_otp_raises_only_otp_errors(api_client, sms_source, email_source, args):
    call_send(api_client.client, args)


@pytest.mark.django_db
@FUZZ
@given(phone=fresh_phone, language=text_value)
@example(phone="13612340000", language="\ud800")
@example(phone="13612340000", language="x" * 17)
def test_send_otp_language_raises_only_otp_errors(api_client, phone, language):
    call_send(api_client.client, {"usage": "signup", "phone_number": phone, "language": language})


@pytest.mark.django_db
@FUZZ
@given(
    args=verify_request(VERIFY_ARGS, text_only=True)
    | st.fixed_dictionaries({}, optional=dict.fromkeys(VERIFY_ARGS, text_value))
)
@example(args={"otp_token": TOKEN, "otp": CODE, "phone_number": PHONE, "usage": "signup"})
@example(args={"otp_token": TOKEN, "otp": "\ud800", "phone_number": PHONE, "usage": "signup"})
@example(args={"otp_token": "\udfff", "otp": "1", "phone_number": PHONE, "usage": "signup"})
def test_verify_otp_raises_only_otp_errors(api_client, issue, args):
    args = fill(args, issue)
    try:
        flows.verify_otp(
            api_client.client, args.pop("otp_token", None), args.pop("otp", None), **args
        )
    except OTPError as exc:
        event(exc.code)
    else:
        event("ok")
