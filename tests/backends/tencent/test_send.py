"""The Tencent Cloud SMS backend at the HTTP level, the real SDK against the local fake.

Each answer of the fake (built from Tencent's documented examples, see
``fake.py``) must become the right outcome: an ``Accepted`` carrying SerialNo,
Fee and IsoCode, or the right DeliveryError class with a code-free reason.

The last test talks to the real service and is skipped unless credentials are
in the environment (see ``LIVE_ENV``).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.base import (
    Accepted,
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.tencent import SMSBackend, sdk

from .fake import (
    CODE,
    ERROR_REQUEST_ID,
    PHONE,
    REQUEST_ID,
    SECRET_ID,
    SECRET_KEY,
    SERIAL,
    SIGN_NAME,
    FakeTencent,
    api_error,
    ok,
    pull_status,
    pulled,
    sequence,
    status_error,
)

T, P, M = TransientDeliveryError, PermanentDeliveryError, BackendMisconfigured
Configure = Callable[..., None]


def make_message(**kwargs: Any) -> OTPMessage:
    values: dict[str, Any] = {
        "channel": "sms",
        "recipient": PHONE,
        "code": CODE,
        "usage": "login",
        "validity_seconds": 120,
        "token_id": 7,
    }
    values.update(kwargs)
    return OTPMessage(**values)


# --- success and the request Tencent receives -----------------------------------------


def test_success_returns_serial_no_fee_and_region(backend: SMSBackend, fake: FakeTencent) -> None:
    assert backend.send(make_message()) == Accepted(SERIAL, fee=1, region="CN")

    assert fake.rejected == []
    [request] = fake.received
    assert request.action == "SendSms"
    assert request.headers["x-tc-region"] == "ap-guangzhou"
    assert request.headers["host"] == fake.url.removeprefix("http://")
    assert request.body == {
        "PhoneNumberSet": [PHONE],
        "SmsSdkAppId": "1400000000",
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


@pytest.mark.parametrize(("seconds", "minutes"), [(60, "1"), (90, "1"), (119, "1"), (3600, "60")])
def test_minutes_never_exceed_the_real_validity(
    backend: SMSBackend, fake: FakeTencent, seconds: int, minutes: str
) -> None:
    backend.send(make_message(validity_seconds=seconds))

    assert fake.received[0].body["TemplateParamSet"] == [CODE, minutes]


@pytest.mark.parametrize(
    ("names", "values"),
    [
        (["code"], [CODE]),
        (["minutes", "code"], ["2", CODE]),
        (["code", "seconds"], [CODE, "120"]),
        (["code", "minutes", "seconds"], [CODE, "2", "120"]),
    ],
)
def test_template_parameters_are_configurable(
    fake: FakeTencent, configure: Configure, names: list[str], values: list[str]
) -> None:
    configure(ENDPOINT=fake.url, TEMPLATE_PARAMS=names)

    SMSBackend().send(make_message())

    assert fake.received[0].body["TemplateParamSet"] == values


def test_a_code_longer_than_tencent_takes_is_refused_before_any_request(
    backend: SMSBackend, fake: FakeTencent
) -> None:
    with pytest.raises(PermanentDeliveryError) as excinfo:
        backend.send(make_message(code="80273145"))

    assert type(excinfo.value) is NotDeliverableHere  # another backend may send it
    assert excinfo.value.provider_code == "CodeTooLong"
    assert "80273145" not in excinfo.value.reason
    assert fake.received == []


def test_a_validity_under_a_minute_is_not_announced_as_minutes(
    fake: FakeTencent, configure: Configure
) -> None:
    configure(ENDPOINT=fake.url)
    with pytest.raises(PermanentDeliveryError) as excinfo:
        SMSBackend().send(make_message(validity_seconds=45))
    assert excinfo.value.provider_code == "ValidityUnderAMinute"
    assert fake.received == []

    configure(ENDPOINT=fake.url, TEMPLATE_PARAMS=["code", "seconds"])
    SMSBackend().send(make_message(validity_seconds=45))
    assert fake.received[0].body["TemplateParamSet"] == [CODE, "45"]


def test_constructor_arguments_override_settings(fake: FakeTencent, configure: Configure) -> None:
    configure(ENDPOINT="http://127.0.0.1:9", SIGN_NAME="")  # both overridden below
    backend = SMSBackend(endpoint=fake.url, sign_name="Other", template_ids={"default": 42})

    backend.send(make_message())

    [request] = fake.received
    assert request.body["SignName"] == "Other"
    assert request.body["TemplateId"] == "42"


def test_templates_and_signatures_by_language(
    fake: FakeTencent, configure: Configure, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "en"
    configure(
        ENDPOINT=fake.url,
        SIGN_NAME={"en": "Acme", "zh-hans": "阿克米"},
        TEMPLATE_IDS={"login": {"en": "3001", "zh": "3002"}, "default": "3999"},
    )
    backend = SMSBackend()

    backend.send(make_message(language="zh-hans"))  # "zh" serves "zh-hans"
    backend.send(make_message(language="en"))
    backend.send(make_message(language="fr"))  # neither: the site's LANGUAGE_CODE
    backend.send(make_message(language="zh-hans", usage="signup"))

    bodies = [r.body for r in fake.received]
    assert [(b["TemplateId"], b["SignName"]) for b in bodies] == [
        ("3002", "阿克米"),
        ("3001", "Acme"),
        ("3001", "Acme"),
        ("3999", "阿克米"),
    ]


def test_the_fake_really_checks_the_signature(fake: FakeTencent, configure: Configure) -> None:
    configure(ENDPOINT=fake.url, SECRET_KEY="not-the-key-the-fake-knows")

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "AuthFailure.SignatureFailure"
    assert fake.rejected == ["AuthFailure.SignatureFailure: signature mismatch"]
    assert fake.received == []


# --- one client per process, keep-alive, timeouts --------------------------------------


def test_one_client_and_one_connection_serve_many_messages(
    backend: SMSBackend, fake: FakeTencent
) -> None:
    backend.send(make_message())
    SMSBackend().send(make_message(token_id=8))  # another instance, same settings

    assert len(fake.sends) == 2
    assert len(fake.connections) == 1  # no second TCP (and, in production, TLS) handshake
    assert backend.get_client() is SMSBackend().get_client()


def test_a_forked_worker_builds_its_own_client(
    backend: SMSBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    parents = backend.get_client()
    monkeypatch.setattr(os, "getpid", lambda: -1)  # what a prefork child sees: another pid

    childs = backend.get_client()

    assert childs is not parents
    assert [key[0] for key in sdk.CLIENTS.clients] == [-1]  # the parent's is dropped, not reused


def test_settings_change_gives_a_new_client(fake: FakeTencent, configure: Configure) -> None:
    configure(ENDPOINT=fake.url)
    first = SMSBackend().get_client()
    configure(ENDPOINT=fake.url, TIMEOUT=4)

    assert SMSBackend().get_client() is not first


def test_timeout_bounds_connect_and_answer(fake: FakeTencent, configure: Configure) -> None:
    configure(ENDPOINT=fake.url, TIMEOUT=1)
    fake.reply = "hang"
    backend = SMSBackend()
    assert backend.get_client().profile.httpProfile.reqTimeout == (0.5, 0.5)
    assert backend.get_client().profile.httpProfile.keepAlive is True

    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert time.monotonic() - started < 1.5
    assert excinfo.value.provider_code == "ClientNetworkError.ReadTimeout"
    assert len(fake.received) == 1  # it did reach the server: an unclear outcome


@pytest.mark.parametrize(
    ("total", "expected"), [(5, (2.0, 3.0)), (1, (0.5, 0.5)), (10, (2.0, 8.0)), (2.5, (1.25, 1.25))]
)
def test_timeout_split(total: float, expected: tuple[float, float]) -> None:
    assert sdk.timeouts(total) == expected


# --- endpoints and regions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (None, ("https", "sms.tencentcloudapi.com")),
        ("mainland", ("https", "sms.tencentcloudapi.com")),
        ("international", ("https", "sms.intl.tencentcloudapi.com")),
        ("regional", ("https", "sms.ap-guangzhou.tencentcloudapi.com")),
        ("sms.ap-shanghai.tencentcloudapi.com", ("https", "sms.ap-shanghai.tencentcloudapi.com")),
        ("http://127.0.0.1:8080/", ("http", "127.0.0.1:8080")),
        ("HTTPS://sms.internal:443", ("https", "sms.internal:443")),
    ],
)
def test_endpoints(endpoint: str | None, expected: tuple[str, str]) -> None:
    resolved = sdk.resolve_endpoint(endpoint, "ap-guangzhou")
    assert (resolved.scheme, resolved.host) == expected


@pytest.mark.parametrize("endpoint", ["ftp://sms.example.com", "intl", "http://", 42])
def test_bad_endpoints_are_refused(endpoint: Any) -> None:
    with pytest.raises(ImproperlyConfigured):
        sdk.resolve_endpoint(endpoint, "ap-guangzhou")


def test_unknown_endpoint_scheme_is_refused(configure: Configure) -> None:
    configure(ENDPOINT="ftp://sms.example.com")

    with pytest.raises(ImproperlyConfigured):
        SMSBackend().send(make_message())


@pytest.mark.parametrize("region", [None, "", "Guangzhou", "ap guangzhou"])
def test_a_region_is_required(configure: Configure, region: Any) -> None:
    configure(REGION=region)  # None used to drop X-TC-Region silently

    with pytest.raises(ImproperlyConfigured, match="REGION"):
        SMSBackend()


# --- credentials -------------------------------------------------------------------------------


@pytest.fixture
def no_credentials_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Nothing for the default chain: no environment, no profile, not on a CVM, not on TKE."""
    from tencentcloud.common import credential

    for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TKE_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(credential.CVMRoleCredential, "get_credential", lambda self: None)
    real_exists = os.path.exists
    monkeypatch.setattr(
        os.path, "exists", lambda p: False if "tencentcloud" in str(p) else real_exists(p)
    )


@pytest.mark.parametrize("mode", [None, "default"])
def test_credentials_from_the_sdks_default_chain(
    fake: FakeTencent,
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
    no_credentials_anywhere: None,
    mode: str | None,
) -> None:
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
    configure(ENDPOINT=fake.url, CREDENTIALS=mode, SECRET_ID=None, SECRET_KEY=None)

    assert SMSBackend().send(make_message()).message_id == SERIAL
    assert fake.rejected == []  # signed with the environment's key


def test_no_credentials_anywhere_stops_the_line(
    fake: FakeTencent, configure: Configure, no_credentials_anywhere: None
) -> None:
    configure(ENDPOINT=fake.url, SECRET_ID=None, SECRET_KEY=None)

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "ClientSideError"
    assert fake.received == []


def credential_factory() -> Any:
    """A site's own credential (an STS or OIDC role, say)."""
    from tencentcloud.common.credential import Credential

    return Credential(SECRET_ID, SECRET_KEY)


def test_credentials_from_a_factory(fake: FakeTencent, configure: Configure) -> None:
    configure(
        ENDPOINT=fake.url,
        CREDENTIALS=f"{__name__}.credential_factory",
        SECRET_ID=None,
        SECRET_KEY=None,
    )

    assert SMSBackend().send(make_message()).message_id == SERIAL


@pytest.mark.parametrize("key", ["SECRET_ID", "SECRET_KEY", "SDK_APP_ID"])
def test_missing_settings_stop_the_line(fake: FakeTencent, configure: Configure, key: str) -> None:
    configure(ENDPOINT=fake.url, **{key: None})

    with pytest.raises(BackendMisconfigured, match=key):
        SMSBackend().send(make_message())

    assert fake.received == []


def test_secret_with_spaces_stops_the_line(fake: FakeTencent, configure: Configure) -> None:
    configure(ENDPOINT=fake.url, SECRET_KEY=" padded ")  # the SDK refuses it

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "InvalidCredential"


# --- what each answer becomes ------------------------------------------------------------------

# Tencent's messages can quote the request; the reason must not.
LEAKY_MESSAGE = f"number {PHONE} (86 13711112222) rejected, params [{CODE}, 2]"

TOP_LEVEL_ANSWERS = [
    ("AuthFailure.SecretIdNotFound", M),
    ("AuthFailure.SignatureExpire", M),
    ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", M),
    ("UnauthorizedOperation.RequestIpNotInWhitelist", M),
    ("UnauthorizedOperation.ServiceSuspendDueToArrears", M),
    ("FailedOperation.InsufficientBalanceInSmsPackage", M),
    ("FailedOperation.TemplateIncorrectOrUnapproved", M),
    ("FailedOperation.SignatureIncorrectOrUnapproved", M),
    ("InternalError.RequestTimeException", M),
    ("FailedOperation.OtherError", P),
    ("FailedOperation.ParametersOtherError", T),
    ("UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone", P),
    ("InvalidRequest", M),
    ("ResourceNotFound", M),
    ("RequestLimitExceeded", T),
    ("InternalError", T),
    ("ServiceUnavailable", T),
    ("SomethingNew.NobodyDocumented", T),
]

PER_NUMBER_ANSWERS = [
    ("InvalidParameterValue.IncorrectPhoneNumber", P),
    ("FailedOperation.PhoneNumberInBlacklist", P),
    ("LimitExceeded.PhoneNumberOneHourLimit", P),
    ("LimitExceeded.PhoneNumberDailyLimit", P),
    ("LimitExceeded.DeliveryFrequencyLimit", P),
    ("LimitExceeded.AppDailyLimit", M),
    ("InternalError.SendAndRecvFail", T),
]


@pytest.mark.parametrize(("code", "expected"), TOP_LEVEL_ANSWERS)
def test_top_level_errors(
    backend: SMSBackend, fake: FakeTencent, code: str, expected: type[DeliveryError]
) -> None:
    fake.reply = api_error(code, LEAKY_MESSAGE)

    with pytest.raises(DeliveryError) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == code
    assert code in excinfo.value.reason
    assert ERROR_REQUEST_ID in excinfo.value.reason  # RequestId kept
    assert CODE not in excinfo.value.reason
    assert "13711112222" not in excinfo.value.reason
    assert "+86137****2222" in excinfo.value.reason
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


@pytest.mark.parametrize(("code", "expected"), PER_NUMBER_ANSWERS)
def test_per_number_status_codes(
    backend: SMSBackend, fake: FakeTencent, code: str, expected: type[DeliveryError]
) -> None:
    fake.reply = status_error(code, LEAKY_MESSAGE)

    with pytest.raises(DeliveryError) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is expected
    assert excinfo.value.provider_code == code
    assert REQUEST_ID in excinfo.value.reason
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

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "UnreadableAnswer"


def test_answer_without_send_status_is_transient(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = lambda request: (200, {"Response": {"SendStatusSet": [], "RequestId": "r-1"}})

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "NoSendStatus"


def test_ok_without_serial_no_is_not_success(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = lambda request: ok(request, serial="")

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == "NoSerialNo"


def test_unknown_iso_code_is_no_region(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = lambda request: ok(request, fee=2, iso="DEF")

    assert backend.send(make_message()) == Accepted(SERIAL, fee=2, region=None)


def test_connection_refused_is_transient_and_certainly_unsent(configure: Configure) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(ENDPOINT=f"http://127.0.0.1:{port}")

    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "ClientNetworkError.ConnectFailed"


def test_missing_template_stops_the_line(fake: FakeTencent, configure: Configure) -> None:
    configure(ENDPOINT=fake.url, TEMPLATE_IDS={"login": "1001"})

    with pytest.raises(BackendMisconfigured, match="signup") as excinfo:
        SMSBackend().send(make_message(usage="signup"))

    assert excinfo.value.provider_code == "NoTemplate"
    assert fake.received == []


def test_missing_sdk_names_the_pip_extra(
    monkeypatch: pytest.MonkeyPatch, configure: Configure
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "tencentcloud.sms.v20210111.sms_client", None)

    with pytest.raises(ImproperlyConfigured, match=re.escape("django-ciam-otp[tencent]")):
        SMSBackend()


# --- the 30-second limit, and an earlier try that may have gone out -----------------------------

THIRTY = "LimitExceeded.PhoneNumberThirtySecondLimit"


def test_thirty_second_limit_waits_out_the_window(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = status_error(THIRTY, "the same number within 30 seconds")

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())

    assert excinfo.value.provider_code == THIRTY
    assert excinfo.value.retry_after is not None and excinfo.value.retry_after > 30
    assert fake.pulls == []  # nothing unclear before: no need to ask


@pytest.mark.parametrize(
    "previous",
    [
        "ClientNetworkError.ReadTimeout",
        "ClientNetworkError.ConnectionLost",
        "ServerNetworkError",
        "InternalError.Timeout",
        "NoSerialNo",
    ],
)
def test_after_an_unclear_try_a_status_with_our_context_means_sent(
    backend: SMSBackend, fake: FakeTencent, previous: str
) -> None:
    fake.pull_reply = pulled(
        pull_status(session_context="otp_token:6", serial="5000:other"),  # another token
        pull_status(session_context="otp_token:7"),
    )

    sent = backend.send(make_message(attempt=1, previous_error=previous))

    assert sent == Accepted(SERIAL)
    assert fake.sends == []  # not sent twice
    [pull] = fake.pulls
    assert pull.body["PhoneNumber"] == PHONE
    assert pull.body["SmsSdkAppId"] == "1400000000"
    assert pull.body["Limit"] == 100 and pull.body["Offset"] == 0
    assert pull.body["BeginTime"] <= time.time() - 120 <= pull.body["EndTime"]


def test_after_an_unclear_try_the_thirty_second_limit_means_sent(
    backend: SMSBackend, fake: FakeTencent
) -> None:
    fake.pull_reply = pulled(pull_status())  # no SessionContext shown: cannot tell
    fake.reply = status_error(THIRTY, "the same number within 30 seconds")

    sent = backend.send(make_message(attempt=1, previous_error="ClientNetworkError.ReadTimeout"))

    assert isinstance(sent, Accepted)
    assert sent.message_id.startswith("tencent-accepted-earlier")
    assert "ClientNetworkError.ReadTimeout" in sent.message_id
    assert len(fake.sends) == 1 and len(fake.pulls) == 1


def test_after_a_clear_refusal_there_is_nothing_to_ask(
    backend: SMSBackend, fake: FakeTencent
) -> None:
    backend.send(make_message(attempt=1, previous_error="RequestLimitExceeded"))

    assert fake.pulls == [] and len(fake.sends) == 1


def test_a_failed_pull_does_not_stop_the_resend(
    backend: SMSBackend, fake: FakeTencent, caplog: pytest.LogCaptureFixture
) -> None:
    fake.pull_reply = api_error("UnauthorizedOperation.RequestPermissionDeny", "no permission")

    sent = backend.send(make_message(attempt=1, previous_error="ClientNetworkError.ReadTimeout"))

    assert sent.message_id == SERIAL
    assert "status pull" in caplog.text and "RequestPermissionDeny" in caplog.text


def test_confirm_before_resend_can_be_turned_off(fake: FakeTencent, configure: Configure) -> None:
    configure(ENDPOINT=fake.url, CONFIRM_BEFORE_RESEND=False)

    SMSBackend().send(make_message(attempt=1, previous_error="ClientNetworkError.ReadTimeout"))

    assert fake.pulls == [] and len(fake.sends) == 1


def test_an_unclear_try_is_remembered_past_a_clear_refusal(
    backend: SMSBackend, fake: FakeTencent
) -> None:
    """Read timeout, then throttled, then the 30-second limit: the first try went out."""
    fake.reply = sequence(
        "hang", api_error("RequestLimitExceeded", "slow down"), status_error(THIRTY, "30 s")
    )
    backend.config["TIMEOUT"] = 0.5
    with pytest.raises(TransientDeliveryError) as first:
        backend.send(make_message())
    backend.config["TIMEOUT"] = 3
    with pytest.raises(TransientDeliveryError) as second:
        backend.send(make_message(attempt=1, previous_error=first.value.provider_code))
    assert second.value.provider_code == "RequestLimitExceeded"

    sent = backend.send(make_message(attempt=2, previous_error=second.value.provider_code))

    assert sent.message_id.startswith("tencent-accepted-earlier")
    assert len(fake.sends) == 3


def test_a_settled_message_forgets_its_unclear_try(backend: SMSBackend, fake: FakeTencent) -> None:
    fake.reply = sequence(lambda r: (502, b"bad gateway"), ok, status_error(THIRTY, "30 s"))
    with pytest.raises(TransientDeliveryError):
        backend.send(make_message())
    backend.send(make_message(attempt=1, previous_error="ServerNetworkError"))

    # A later message to the same token id (a test's reuse) starts clean.
    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message(attempt=0))
    assert excinfo.value.retry_after is not None


# --- nothing secret reaches the logs --------------------------------------------------


def test_logs_hold_neither_code_nor_phone_number(
    backend: SMSBackend, fake: FakeTencent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK logs request bodies at DEBUG

    backend.send(make_message())
    fake.reply = status_error(THIRTY, LEAKY_MESSAGE)
    with pytest.raises(TransientDeliveryError):
        backend.send(make_message())
    fake.pull_reply = pulled(pull_status(session_context="otp_token:7"))
    backend.send(make_message(attempt=1, previous_error="ServerNetworkError"))

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "+86137****2222" in text  # the backend did log, masked
    assert CODE not in text
    assert "13711112222" not in text


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
def test_live_send_through_tencent_cloud(configure: Configure) -> None:
    configure(
        CREDENTIALS="default",  # TENCENTCLOUD_SECRET_ID / _KEY, through the SDK's chain
        SECRET_ID=None,
        SECRET_KEY=None,
        REGION=os.environ.get("TENCENTCLOUD_SMS_REGION", "ap-guangzhou"),
        SDK_APP_ID=os.environ["TENCENTCLOUD_SMS_SDK_APP_ID"],
        SIGN_NAME=os.environ["TENCENTCLOUD_SMS_SIGN_NAME"],
        TEMPLATE_IDS={"default": os.environ["TENCENTCLOUD_SMS_TEMPLATE_ID"]},
        ENDPOINT=None,
        TIMEOUT=10,
    )

    sent = SMSBackend().send(
        make_message(recipient=os.environ["TENCENTCLOUD_SMS_PHONE"], code="123456")
    )

    assert sent.message_id and sent.fee
