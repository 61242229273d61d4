"""Twilio's status callbacks: refused unless signed for the right URL, then read.

Signatures are computed here from Twilio's documented algorithm
(https://www.twilio.com/docs/usage/webhooks/webhooks-security: base64 of the
HMAC-SHA1, keyed with the Auth Token, of the URL followed by each POST
parameter's name and value, sorted by name), not with the SDK the backend uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.http import HttpRequest
from django.test import RequestFactory

from django_ciam_otp.backends.base import Receipt, ReceiptMalformed, ReceiptRefused
from django_ciam_otp.backends.sms.twilio import SMSBackend

from .fake import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, CALLBACK, FROM_NUMBER

Configure = Callable[..., None]
SID = "SM" + "0" * 31 + "1"
PATH = "/otp/receipts/twilio/"


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def callback(status: str, **extra: str) -> dict[str, str]:
    """The form of a status callback, as Twilio posts it."""
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": FROM_NUMBER,
        "MessageSid": SID,
        "MessageStatus": status,
        "SmsSid": SID,
        "SmsStatus": status,
        "To": "+14155552671",
        **extra,
    }


def post(
    params: dict[str, str],
    signature: str | None,
    *,
    host: str = "otp.example.com",
    secure: bool = True,
    headers: dict[str, str] | None = None,
) -> HttpRequest:
    extra: dict[str, Any] = {"HTTP_HOST": host, "secure": secure}
    if signature is not None:
        extra["HTTP_X_TWILIO_SIGNATURE"] = signature
    for name, value in (headers or {}).items():
        extra["HTTP_" + name.upper().replace("-", "_")] = value
    # As Twilio posts it: a form-encoded body.
    return RequestFactory().post(
        PATH, urlencode(params), content_type="application/x-www-form-urlencoded", **extra
    )


@pytest.fixture
def backend(configure: Configure) -> SMSBackend:
    configure()
    return SMSBackend()


def test_the_backend_takes_receipts_at_its_own_url() -> None:
    assert SMSBackend.receives_receipts is True
    assert SMSBackend.default_name == "twilio"
    assert SMSBackend.configured_name() == "twilio"  # /otp/receipts/twilio/


# --- what an authentic callback says -------------------------------------------------------


def test_delivered(backend: SMSBackend) -> None:
    params = callback("delivered", RawDlrDoneDate="2606301012")

    assert backend.parse_receipts(post(params, sign(CALLBACK, params))) == [
        Receipt(message_id=SID, delivered=True, status="delivered", reported_at=None)
    ]


@pytest.mark.parametrize(
    ("status", "extra", "recorded"),
    [
        ("undelivered", {"ErrorCode": "30003"}, "30003"),
        ("failed", {"ErrorCode": "30034"}, "30034"),
        ("failed", {}, "failed"),
    ],
)
def test_not_delivered(
    backend: SMSBackend, status: str, extra: dict[str, str], recorded: str
) -> None:
    params = callback(status, **extra)

    assert backend.parse_receipts(post(params, sign(CALLBACK, params))) == [
        Receipt(message_id=SID, delivered=False, status=recorded)
    ]


@pytest.mark.parametrize(
    "status",
    ["queued", "accepted", "scheduled", "sending", "sent", "read", "canceled", "receiving"],
)
def test_steps_on_the_way_make_no_receipt(backend: SMSBackend, status: str) -> None:
    params = callback(status)

    assert backend.parse_receipts(post(params, sign(CALLBACK, params))) == []


def test_an_authentic_callback_without_a_message_sid_is_malformed(backend: SMSBackend) -> None:
    params = {"AccountSid": ACCOUNT_SID, "MessageStatus": "delivered"}

    with pytest.raises(ReceiptMalformed):
        backend.parse_receipts(post(params, sign(CALLBACK, params)))


def test_an_authentic_callback_without_a_status_is_malformed(backend: SMSBackend) -> None:
    params = {"AccountSid": ACCOUNT_SID, "MessageSid": SID}

    with pytest.raises(ReceiptMalformed):
        backend.parse_receipts(post(params, sign(CALLBACK, params)))


# --- what is refused, unread ------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        sign(CALLBACK, callback("delivered"), token="another-token"),
        sign("https://otp.example.com/otp/receipts/other/", callback("delivered")),
        sign(CALLBACK, callback("undelivered")),  # a signature of another body
    ],
    ids=["missing", "empty", "other-token", "other-url", "other-body"],
)
def test_a_callback_not_signed_for_this_url_and_body_is_refused(
    backend: SMSBackend, signature: str | None
) -> None:
    with pytest.raises(ReceiptRefused):
        backend.parse_receipts(post(callback("delivered"), signature))


def test_a_refusal_without_a_signature_does_not_read_the_body(backend: SMSBackend) -> None:
    request = post(callback("delivered"), None)

    with pytest.raises(ReceiptRefused):
        backend.parse_receipts(request)

    assert not hasattr(request, "_post")  # Django parses the form on first access


def test_with_status_callback_set_the_request_s_own_url_does_not_count(
    backend: SMSBackend,
) -> None:
    """The URL every message named is the one checked, whatever Host the request claims."""
    params = callback("delivered")
    spoofed_host = "attacker.example.net"
    own_url = f"https://{spoofed_host}{PATH}"

    with pytest.raises(ReceiptRefused):
        backend.parse_receipts(post(params, sign(own_url, params), host=spoofed_host))


def test_without_status_callback_the_request_s_url_is_checked(configure: Configure) -> None:
    configure(STATUS_CALLBACK=None)  # e.g. a Messaging Service's own callback URL
    backend = SMSBackend()
    params = callback("delivered")
    url = f"https://otp.example.com{PATH}"

    assert backend.parse_receipts(post(params, sign(url, params)))[0].delivered is True
    with pytest.raises(ReceiptRefused):  # signed for https, received as http
        backend.parse_receipts(post(params, sign(url, params), secure=False))


def test_a_port_twilio_left_out_of_the_signature_is_accepted(configure: Configure) -> None:
    """Twilio signs https URLs with or without :443; the SDK tries both."""
    configure(STATUS_CALLBACK="https://otp.example.com:443/otp/receipts/twilio/")
    params = callback("delivered")

    receipts = SMSBackend().parse_receipts(post(params, sign(CALLBACK, params)))

    assert receipts[0].delivered is True


def test_without_an_auth_token_every_callback_is_refused(configure: Configure) -> None:
    configure(AUTH_TOKEN=None, API_KEY_SID=API_KEY_SID, API_KEY_SECRET=API_KEY_SECRET)
    params = callback("delivered")

    with pytest.raises(ReceiptRefused):
        SMSBackend().parse_receipts(post(params, sign(CALLBACK, params, token="")))


def test_only_posts_are_read(configure: Configure) -> None:
    """Twilio posts status callbacks; a GET signed over its query string is still refused."""
    configure(STATUS_CALLBACK=None)
    params = callback("delivered")
    request = RequestFactory().get(PATH, params, HTTP_HOST="otp.example.com", secure=True)
    request.META["HTTP_X_TWILIO_SIGNATURE"] = sign(request.build_absolute_uri(), {})

    with pytest.raises(ReceiptRefused):
        SMSBackend().parse_receipts(request)


def test_a_shared_key_signature_is_refused_and_logged(
    backend: SMSBackend, caplog: pytest.LogCaptureFixture
) -> None:
    params = callback("delivered")
    shared = {"X-Twilio-Webhooks-Signature-Settings": "key=KS1,algorithm=HMAC_SHA256"}

    with pytest.raises(ReceiptRefused):
        backend.parse_receipts(post(params, sign(CALLBACK, params, "shared"), headers=shared))

    assert "SharedKey" in caplog.text


def test_a_multipart_body_is_refused_before_it_is_parsed(backend: SMSBackend) -> None:
    """Its file parts would be spooled to disk before the signature could be checked."""
    request = RequestFactory().post(
        PATH,
        {"MessageSid": "SM1", "MessageStatus": "delivered"},  # multipart, as the test client sends
        HTTP_HOST="otp.example.com",
        secure=True,
        HTTP_X_TWILIO_SIGNATURE="c2lnbmF0dXJl",
    )
    with pytest.raises(ReceiptRefused, match="form-encoded"):
        backend.parse_receipts(request)
    assert not hasattr(request, "_post")  # never parsed


def test_a_body_that_cannot_be_parsed_is_refused(backend: SMSBackend) -> None:
    request = RequestFactory().post(
        PATH,
        data=b"--broken",
        content_type="multipart/form-data; boundary=",  # no boundary: Django cannot parse it
        HTTP_HOST="otp.example.com",
        secure=True,
        HTTP_X_TWILIO_SIGNATURE="c2lnbmF0dXJl",
    )

    with pytest.raises(ReceiptRefused):
        backend.parse_receipts(request)
