"""Tencent Cloud SMS backend, tested at the HTTP level against a local fake.

The fake plays ``sms.tencentcloudapi.com``: it recomputes the TC3-HMAC-SHA256
signature from Tencent's documented algorithm (written out here, independent of
the SDK's own ``Sign``) with the test secret key, checks the action headers and
the JSON body, and answers the way Tencent does: success, a top-level
``Response.Error``, a per-number ``SendStatusSet`` error, an HTTP 500, or no
answer at all. Each answer must map to the right DeliveryError class.

The last test talks to the real service and is skipped unless credentials are
in the environment (see ``LIVE_ENV``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.base import (
    DeliveryError,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms import tencent
from django_ciam_otp.backends.sms.tencent import (
    ERROR_CLASSES,
    SMSBackend,
    check_tencent_settings,
    classify_error,
)

SECRET_ID = "AKIDtestSecretId0000000000000000"
SECRET_KEY = "test-secret-key-0000000000000000"
SDK_APP_ID = "1400000000"
SIGN_NAME = "腾讯云测试"
PHONE = "+8613711112222"
CODE = "802731"


def make_message(**kwargs: Any) -> OTPMessage:
    values: dict[str, Any] = {
        "channel": "sms",
        "recipient": PHONE,
        "code": CODE,
        "usage": "login",
        "validity_seconds": 90,  # -> "2" minutes
        "token_id": 7,
    }
    values.update(kwargs)
    return OTPMessage(**values)


# --- TC3-HMAC-SHA256, as Tencent Cloud API 3.0 "Signature v3" documents it -----------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str,
    *,
    method: str,
    uri: str,
    query: str,
    headers: dict[str, str],
    signed_headers: str,
    payload: bytes,
    timestamp: str,
    date: str,
    service: str,
) -> str:
    """Signature over the canonical request, as the server computes it."""
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in names)
    canonical_request = "\n".join(
        [
            method,
            uri,
            query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            timestamp,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


# --- the fake service -----------------------------------------------------------------


@dataclass
class Received:
    """One request as the fake saw it, after it passed the signature check."""

    headers: dict[str, str]
    body: dict[str, Any]


Reply = tuple[int, Any]  # (HTTP status, JSON-able dict or raw bytes); "hang" waits


@dataclass
class FakeTencent:
    url: str = ""
    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    reply: Callable[[Received], Reply] | str = field(default=lambda r: ok(r))
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def ok(request: Received, serial: str = "2433:123456789012345678901234567") -> Reply:
    return 200, {
        "Response": {
            "SendStatusSet": [
                {
                    "SerialNo": serial,
                    "PhoneNumber": request.body["PhoneNumberSet"][0],
                    "Fee": 1,
                    "SessionContext": request.body.get("SessionContext", ""),
                    "Code": "Ok",
                    "Message": "send success",
                    "IsoCode": "CN",
                }
            ],
            "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279",
        }
    }


def status_error(code: str, message: str) -> Callable[[Received], Reply]:
    """Per-number failure: HTTP 200, no Response.Error, SendStatusSet[0].Code != Ok."""

    def reply(request: Received) -> Reply:
        status, body = ok(request, serial="")
        body["Response"]["SendStatusSet"][0].update(Code=code, Message=message, Fee=0)
        return status, body

    return reply


def api_error(code: str, message: str) -> Callable[[Received], Reply]:
    """Whole-request failure: HTTP 200 with Response.Error."""
    return lambda request: (
        200,
        {
            "Response": {
                "Error": {"Code": code, "Message": message},
                "RequestId": "b1f0e4c2-58c7-4d1e-9d0e-0c1f2e3d4a5b",
            }
        },
    )


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        # Exactly this value: the SDK only looks for Response.Error when it sees it.
        self.send_header("Content-Type", "application/json" if status == 200 else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reject(self, code: str, why: str) -> None:
        fake: FakeTencent = self.server.fake
        fake.rejected.append(f"{code}: {why}")
        self._answer(*api_error(code, why)(None))  # type: ignore[arg-type]

    def do_POST(self) -> None:
        fake: FakeTencent = self.server.fake
        payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}

        match = AUTH_RE.match(headers.get("authorization", ""))
        if not match:
            return self._reject("AuthFailure.InvalidAuthorization", "bad Authorization header")
        timestamp = headers.get("x-tc-timestamp", "")
        if abs(time.time() - int(timestamp or 0)) > 300:
            return self._reject("AuthFailure.SignatureExpire", "timestamp too far off")
        if match["date"] != datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d"):
            return self._reject("AuthFailure.SignatureFailure", "credential date != timestamp")
        if match["id"] != fake.secret_id:
            return self._reject("AuthFailure.SecretIdNotFound", "unknown SecretId")
        if match["service"] != "sms" or "host" not in match["signed"].split(";"):
            return self._reject("AuthFailure.SignatureFailure", "bad scope or signed headers")
        expected = tc3_signature(
            fake.secret_key,
            method=self.command,
            uri=self.path,
            query="",
            headers=headers,
            signed_headers=match["signed"],
            payload=payload,
            timestamp=timestamp,
            date=match["date"],
            service=match["service"],
        )
        if not hmac.compare_digest(expected, match["sig"]):
            return self._reject("AuthFailure.SignatureFailure", "signature mismatch")
        if headers.get("x-tc-action") != "SendSms":
            return self._reject("InvalidAction", headers.get("x-tc-action", "no action"))
        if headers.get("x-tc-version") != "2021-01-11":
            return self._reject("NoSuchVersion", headers.get("x-tc-version", "no version"))
        if headers.get("content-type") != "application/json":
            return self._reject("InvalidParameter", "content type")

        received = Received(headers=headers, body=json.loads(payload))
        fake.received.append(received)
        if fake.reply == "hang":  # answer nothing until the test is over
            fake.release.wait(10)
            return None
        assert callable(fake.reply)
        return self._answer(*fake.reply(received))


@pytest.fixture
def fake() -> Iterator[FakeTencent]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.fake = FakeTencent(url=f"http://127.0.0.1:{server.server_address[1]}")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.fake  # type: ignore[attr-defined]
    finally:
        server.fake.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK and requests honour *_PROXY; the fake is on loopback."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def tencent_conf(**overrides: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "SECRET_ID": SECRET_ID,
        "SECRET_KEY": SECRET_KEY,
        "REGION": "ap-guangzhou",
        "SDK_APP_ID": SDK_APP_ID,
        "SIGN_NAME": SIGN_NAME,
        "TEMPLATE_IDS": {"login": "1001", "default": "1999"},
        "ENDPOINT": None,
        "TIMEOUT": 3,
    }
    conf.update(overrides)
    return conf


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Set CIAM_OTP["TENCENT_SMS"] (conf.py reloads on setting_changed)."""

    def apply(**overrides: Any) -> None:
        settings.CIAM_OTP = {
            **settings.CIAM_OTP,
            "SMS_BACKEND": tencent.BACKEND_PATH,
            "TENCENT_SMS": tencent_conf(**overrides),
        }

    return apply


@pytest.fixture
def backend(fake: FakeTencent, configure: Callable[..., None]) -> SMSBackend:
    configure(ENDPOINT=fake.url)
    return SMSBackend()


# --- success and the request Tencent receives -----------------------------------------


def test_success_returns_serial_no_and_sends_a_signed_request(
    backend: SMSBackend, fake: FakeTencent
) -> None:
    assert backend.send(make_message()) == "2433:123456789012345678901234567"

    assert fake.rejected == []
    [request] = fake.received
    assert request.headers["x-tc-region"] == "ap-guangzhou"
    assert request.headers["host"] == fake.url.removeprefix("http://")
    assert request.body == {
        "PhoneNumberSet": [PHONE],
        "SmsSdkAppId": SDK_APP_ID,
        "SignName": SIGN_NAME,
        "TemplateId": "1001",
        "TemplateParamSet": [CODE, "2"],
        "SessionContext": "otp_token:7",
    }


def test_default_template_serves_usages_not_listed(backend: SMSBackend, fake: FakeTencent) -> None:
    backend.send(make_message(usage="reset_password", validity_seconds=300, token_id=None))

    [request] = fake.received
    assert request.body["TemplateId"] == "1999"
    assert request.body["TemplateParamSet"] == [CODE, "5"]
    assert "SessionContext" not in request.body


def test_constructor_arguments_override_settings(
    fake: FakeTencent, configure: Callable[..., None]
) -> None:
    configure(ENDPOINT="http://127.0.0.1:9", SIGN_NAME="")  # both overridden below
    backend = SMSBackend(endpoint=fake.url, sign_name="Other", template_ids={"default": 42})

    backend.send(make_message())

    [request] = fake.received
    assert request.body["SignName"] == "Other"
    assert request.body["TemplateId"] == "42"


def test_sign_name_is_left_out_when_not_configured(
    fake: FakeTencent, configure: Callable[..., None]
) -> None:
    configure(ENDPOINT=fake.url, SIGN_NAME=None)  # international-only sites need none

    SMSBackend().send(make_message(recipient="+14155550123"))

    [request] = fake.received
    assert "SignName" not in request.body
    assert request.body["PhoneNumberSet"] == ["+14155550123"]


def test_the_fake_really_checks_the_signature(
    fake: FakeTencent, configure: Callable[..., None]
) -> None:
    configure(ENDPOINT=fake.url, SECRET_KEY="not-the-key-the-fake-knows")

    with pytest.raises(PermanentDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "AuthFailure.SignatureFailure"
    assert fake.rejected == ["AuthFailure.SignatureFailure: signature mismatch"]
    assert fake.received == []


# --- error mapping --------------------------------------------------------------------

T, P = TransientDeliveryError, PermanentDeliveryError

TOP_LEVEL_ERRORS = [
    ("AuthFailure.SignatureFailure", P),
    ("AuthFailure.SecretIdNotFound", P),
    ("AuthFailure.SignatureExpire", P),
    ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", P),
    ("UnauthorizedOperation.ServiceSuspendDueToArrears", P),
    ("FailedOperation.TemplateIncorrectOrUnapproved", P),
    ("FailedOperation.SignatureIncorrectOrUnapproved", P),
    ("FailedOperation.InsufficientBalanceInSmsPackage", P),
    ("FailedOperation.OtherError", T),
    ("InvalidParameterValue.TemplateParameterFormatError", P),
    ("UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone", P),
    ("MissingParameter.EmptyPhoneNumberSet", P),
    ("InternalError", T),
    ("InternalError.Timeout", T),
    ("InternalError.OtherError", T),
    ("InternalError.RequestTimeException", P),
    ("InternalError.SigVerificationFail", P),
    ("RequestLimitExceeded", T),
    ("RequestLimitExceeded.UinLimitExceeded", T),
    ("LimitExceeded.DeliveryFrequencyLimit", T),
    ("LimitExceeded.AppDailyLimit", P),
    ("ServiceUnavailable", T),
    ("SomethingNew.NobodyDocumented", T),
]

PER_NUMBER_ERRORS = [
    ("InvalidParameterValue.IncorrectPhoneNumber", P),
    ("FailedOperation.PhoneNumberInBlacklist", P),
    ("FailedOperation.PhoneNumberParseFail", P),
    ("LimitExceeded.PhoneNumberThirtySecondLimit", T),
    ("LimitExceeded.PhoneNumberOneHourLimit", P),
    ("LimitExceeded.PhoneNumberDailyLimit", P),
    ("LimitExceeded.PhoneNumberSameContentDailyLimit", P),
    ("InternalError.SendAndRecvFail", T),
]

# Tencent's messages can quote the request; the reason must not.
LEAKY_MESSAGE = f"number {PHONE} (86 13711112222) rejected, params [{CODE}, 2]"


@pytest.mark.parametrize(("code", "expected"), TOP_LEVEL_ERRORS)
def test_top_level_error_codes(
    backend: SMSBackend, fake: FakeTencent, code: str, expected: type[DeliveryError]
) -> None:
    fake.reply = api_error(code, LEAKY_MESSAGE)

    with pytest.raises(expected) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == code
    assert code in excinfo.value.reason
    assert "b1f0e4c2-58c7-4d1e-9d0e-0c1f2e3d4a5b" in excinfo.value.reason  # RequestId kept
    assert CODE not in excinfo.value.reason
    assert "13711112222" not in excinfo.value.reason
    assert "+86137****2222" in excinfo.value.reason


@pytest.mark.parametrize(("code", "expected"), PER_NUMBER_ERRORS)
def test_per_number_status_codes(
    backend: SMSBackend, fake: FakeTencent, code: str, expected: type[DeliveryError]
) -> None:
    fake.reply = status_error(code, LEAKY_MESSAGE)

    with pytest.raises(expected) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == code
    assert CODE not in excinfo.value.reason
    assert "13711112222" not in excinfo.value.reason


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_errors_are_transient(backend: SMSBackend, fake: FakeTencent, status: int) -> None:
    fake.reply = lambda request: (status, b"<html><body>upstream error</body></html>")

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "ServerNetworkError"
    assert "upstream error" in excinfo.value.reason


def test_garbage_answer_is_transient(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = lambda request: (200, b"this is not json")

    with pytest.raises(TransientDeliveryError):
        backend.send(make_message())


def test_answer_without_send_status_is_transient(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = lambda request: (200, {"Response": {"SendStatusSet": [], "RequestId": "r-1"}})

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "NoSendStatus"


def test_timeout_is_transient(fake: FakeTencent, configure: Callable[..., None]) -> None:
    configure(ENDPOINT=fake.url, TIMEOUT=0.5)
    fake.reply = "hang"

    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert time.monotonic() - started < 5
    assert excinfo.value.provider_code == "ClientNetworkError"
    assert len(fake.received) == 1  # it did reach the server


def test_connection_refused_is_transient(configure: Callable[..., None]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(ENDPOINT=f"http://127.0.0.1:{port}")

    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "ClientNetworkError"


# --- configuration errors before any request ------------------------------------------


def test_missing_template_is_permanent(fake: FakeTencent, configure: Callable[..., None]) -> None:
    configure(ENDPOINT=fake.url, TEMPLATE_IDS={"login": "1001"})

    with pytest.raises(PermanentDeliveryError, match="signup"):
        SMSBackend().send(make_message(usage="signup"))

    assert fake.received == []


@pytest.mark.parametrize("key", ["SECRET_ID", "SECRET_KEY", "SDK_APP_ID"])
def test_missing_credentials_are_permanent(
    fake: FakeTencent, configure: Callable[..., None], key: str
) -> None:
    configure(ENDPOINT=fake.url, **{key: None})

    with pytest.raises(PermanentDeliveryError, match=key):
        SMSBackend().send(make_message())

    assert fake.received == []


def test_secret_with_spaces_is_permanent(fake: FakeTencent, configure: Callable[..., None]) -> None:
    configure(ENDPOINT=fake.url, SECRET_KEY=" padded ")  # the SDK refuses it

    with pytest.raises(PermanentDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "InvalidCredential"


def test_unknown_endpoint_scheme_is_refused(configure: Callable[..., None]) -> None:
    configure(ENDPOINT="ftp://sms.example.com")

    with pytest.raises(ImproperlyConfigured):
        SMSBackend().send(make_message())


def test_missing_sdk_names_the_pip_extra(
    monkeypatch: pytest.MonkeyPatch, configure: Callable[..., None]
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "tencentcloud.sms.v20210111.sms_client", None)

    with pytest.raises(ImproperlyConfigured, match=re.escape("django-ciam-otp[tencent]")):
        SMSBackend()


# --- nothing secret reaches the logs --------------------------------------------------


def test_logs_hold_neither_code_nor_phone_number(
    backend: SMSBackend, fake: FakeTencent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK logs request bodies at DEBUG

    backend.send(make_message())
    fake.reply = status_error("LimitExceeded.PhoneNumberThirtySecondLimit", LEAKY_MESSAGE)
    with pytest.raises(TransientDeliveryError):
        backend.send(make_message())

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "+86137****2222" in text  # the backend did log, masked
    assert CODE not in text
    assert "13711112222" not in text


# --- the error table ------------------------------------------------------------------


def test_every_sdk_error_category_is_in_the_table() -> None:
    """A new category in the SDK should be a decision, not a silent 'transient'."""
    from tencentcloud.sms.v20210111 import errorcodes  # type: ignore[import-untyped]

    codes = [v for k, v in vars(errorcodes).items() if k.isupper() and isinstance(v, str)]
    assert codes
    categories = {code.split(".", 1)[0] for code in codes}
    assert categories <= set(ERROR_CLASSES)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("LimitExceeded.PhoneNumberThirtySecondLimit", T),
        ("LimitExceeded.SomeNewDailyQuota", P),
        ("FailedOperation.SomethingNew", P),
        ("InternalError.SomethingNew", T),
        ("AuthFailure.MFAFailure", P),
        ("ClientNetworkError", T),
        ("JSONDecodeError", T),
    ],
)
def test_classify_error(code: str, expected: type[Exception]) -> None:
    assert classify_error(code) is expected


# --- system check ---------------------------------------------------------------------


def check_ids() -> list[str | None]:
    return [message.id for message in check_tencent_settings()]


def test_check_is_silent_for_other_backends(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TENCENT_SMS": {}}  # locmem backend in tests

    assert check_tencent_settings() == []


def test_check_passes_a_complete_configuration(configure: Callable[..., None]) -> None:
    configure()

    assert check_ids() == []


def test_check_reports_every_missing_setting(configure: Callable[..., None]) -> None:
    configure(SECRET_ID=None, SECRET_KEY="", SDK_APP_ID=None, SIGN_NAME=None, TEMPLATE_IDS={})

    assert check_ids() == [
        "ciam_otp.E101",
        "ciam_otp.E102",
        "ciam_otp.E103",
        "ciam_otp.E104",
        "ciam_otp.E105",
    ]


def test_check_accepts_templates_for_every_usage_without_default(
    configure: Callable[..., None],
) -> None:
    from django_ciam_otp.models import Usage

    configure(TEMPLATE_IDS={usage: "1001" for usage in Usage.values})
    assert check_ids() == []

    configure(TEMPLATE_IDS={"login": "1001"})
    [message] = check_tencent_settings()
    assert message.id == "ciam_otp.E105"
    assert "signup" in message.msg


def test_check_needs_no_sign_name_without_mainland_numbers(
    settings: Any, configure: Callable[..., None]
) -> None:
    configure(SIGN_NAME=None)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "PHONE_REGIONS": ["HK", "SG"]}

    assert check_ids() == []


def test_check_covers_subclasses(settings: Any, configure: Callable[..., None]) -> None:
    configure(SECRET_ID=None)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{__name__}.MyTencentBackend"}

    assert check_ids() == ["ciam_otp.E101"]


class MyTencentBackend(SMSBackend):
    """A site's subclass; the check must still apply."""


def test_check_reports_missing_sdk(
    monkeypatch: pytest.MonkeyPatch, configure: Callable[..., None]
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "tencentcloud.sms.v20210111.models", None)

    assert check_ids() == ["ciam_otp.E106"]


# --- live -----------------------------------------------------------------------------

# LIVE TEST: sends one real SMS (and costs one message) through Tencent Cloud.
# Runs only when TENCENTCLOUD_SMS_LIVE=1 and every variable below is set.
LIVE_ENV = (
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TENCENTCLOUD_SMS_SDK_APP_ID",
    "TENCENTCLOUD_SMS_SIGN_NAME",
    "TENCENTCLOUD_SMS_TEMPLATE_ID",  # approved, parameters {1} code and {2} minutes
    "TENCENTCLOUD_SMS_PHONE",  # E.164, a phone you own
)
LIVE = os.environ.get("TENCENTCLOUD_SMS_LIVE") == "1" and all(os.environ.get(n) for n in LIVE_ENV)


@pytest.mark.skipif(
    not LIVE,
    reason="live Tencent Cloud SMS: set TENCENTCLOUD_SMS_LIVE=1 and " + ", ".join(LIVE_ENV),
)
def test_live_send_through_tencent_cloud(configure: Callable[..., None]) -> None:
    configure(
        SECRET_ID=os.environ["TENCENTCLOUD_SECRET_ID"],
        SECRET_KEY=os.environ["TENCENTCLOUD_SECRET_KEY"],
        REGION=os.environ.get("TENCENTCLOUD_SMS_REGION", "ap-guangzhou"),
        SDK_APP_ID=os.environ["TENCENTCLOUD_SMS_SDK_APP_ID"],
        SIGN_NAME=os.environ["TENCENTCLOUD_SMS_SIGN_NAME"],
        TEMPLATE_IDS={"default": os.environ["TENCENTCLOUD_SMS_TEMPLATE_ID"]},
        ENDPOINT=None,
        TIMEOUT=10,
    )

    serial_no = SMSBackend().send(
        make_message(recipient=os.environ["TENCENTCLOUD_SMS_PHONE"], code="123456")
    )

    assert serial_no
