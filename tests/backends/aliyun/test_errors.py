"""Alibaba's error codes, classified from Alibaba's pages, independently of the backend's table.

``EXPECTED`` was written from the pages themselves (the reason and remedy of
each code on https://help.aliyun.com/document_detail/101346.html, the flow
control page https://help.aliyun.com/document_detail/2881383.html, the
gateway's common codes), not copied from ``ERROR_CLASSES``: a code in one and
not the other is a decision still to make, and fails the test.

The question asked of each: can a retry within the code's life (minutes)
succeed (T); can this message never succeed (P); can another backend reach
this number when Alibaba cannot (N); or can no message succeed until someone
changes the account, the console or the settings (M)?
"""

from __future__ import annotations

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from django_ciam_otp.backends.base import (
    BackendMisconfigured,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.aliyun import ERROR_CLASSES, UNCLEAR_OUTCOMES, classify_error
from django_ciam_otp.backends.sms.aliyun.errors import (
    failure_of,
    flow_control_window,
    local_code,
    network_code,
    retry_after,
)

T, P, N, M = (
    TransientDeliveryError,
    PermanentDeliveryError,
    NotDeliverableHere,
    BackendMisconfigured,
)

EXPECTED = {
    # Raised on this side: no answer, or an answer that says nothing.
    "Network": T,
    "Network.ConnectFailed": T,
    "Network.ConnectTimeout": T,
    "Network.ReadTimeout": T,
    "Network.ConnectionLost": T,
    "Network.Interrupted": T,
    "UnreadableAnswer": T,
    "NoBizId": T,
    "InvalidCredentials": M,
    "NoCredentials": M,
    "NoSignName": M,
    "NoTemplate": M,
    "NoInternationalTemplate": N,  # the next backend may have a template for the region
    "InvalidNumber": P,
    "ValidityUnderAMinute": N,
    # The gateway, before SendSms runs.
    "InvalidAccessKeyId": M,
    "Forbidden": M,
    "NoPermission": M,
    "SignatureDoesNotMatch": M,
    "IncompleteSignature": M,
    "InvalidSignatureMethod": M,
    "InvalidTimeStamp": M,  # the server's clock
    "SignatureNonceUsed": T,
    "InvalidSecurityToken": M,
    "InvalidSecurityToken.Expired": T,
    "InvalidAction": M,
    "InvalidApi": M,
    "InvalidVersion": M,
    "UnsupportedHTTPMethod": M,
    "MissingParameter": M,
    "InvalidParameter": M,
    "Throttling": T,
    "InternalError": T,
    "ServiceUnavailable": T,
    # SendSms's own codes (101346).
    "isp.SYSTEM_ERROR": T,  # "系统错误，请重新调用"
    "isp.GATEWAY_ERROR": T,  # "请尝试重新发送"
    "isp.RAM_PERMISSION_DENY": M,  # a RAM policy must grant it
    "isv.ACCOUNT_ABNORMAL": M,
    "isv.ACCOUNT_NOT_EXISTS": M,
    "isv.AMOUNT_NOT_ENOUGH": M,
    "isv.BLACK_KEY_CONTROL_LIMIT": P,  # "命中黑名单的号码暂无法解除"
    "isv.CODE_ERROR": M,
    "isv.CODE_EXCEED_LIMIT": M,
    "isv.CUSTOMER_REFUSED": P,
    "isv.DAY_LIMIT_CONTROL": M,  # the console's daily total
    "isv.DENY_IP_RANGE": M,  # the server's IP: move it or proxy
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": N,
    "isv.EXTEND_CODE_ERROR": M,
    "isv.INVALID_JSON_PARAM": M,
    "isv.INVALID_PARAMETERS": M,
    "isv.MOBILE_COUNT_OVER_LIMIT": P,
    "isv.MOBILE_NUMBER_ILLEGAL": P,
    "isv.MONTH_LIMIT_CONTROL": M,
    "isv.ONE_CODE_MULTIPLE_SIGN": M,
    "isv.OUT_OF_SERVICE": M,
    "isv.PARAM_LENGTH_LIMIT": P,  # this code's length
    "isv.PARAM_NOT_SUPPORT_URL": M,
    "isv.PRODUCT_UNSUBSCRIBE": M,
    "isv.PRODUCT_UN_SUBSCRIPT": M,
    "isv.SECURITY_FROZEN_ACCOUNT": M,
    "isv.SIGN_STATE_ILLEGAL": M,
    "isv.SMS_CONTENT_ILLEGAL": M,
    "isv.SMS_CONTENT_MISMATCH_TEMPLATE_TYPE": M,
    "isv.SMS_SIGNATURE_ILLEGAL": M,
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": M,
    "isv.SMS_SIGN_ILLEGAL": M,
    "isv.SMS_TEMPLATE_ILLEGAL": M,
    "isv.SMS_TEST_NUMBER_LIMIT": M,  # a test signature in production
    "isv.SMS_TEST_SIGN_TEMPLATE_LIMIT": M,
    "isv.SMS_TEST_TEMPLATE_PARAMS_ILLEGAL": M,
    "isv.TEMPLATE_MISSING_PARAMETERS": M,
    "isv.TEMPLATE_PARAMS_ILLEGAL": M,
    "isv.UNSUPPORTED_CONTENT": M,
    "PORT_NOT_REGISTERED": M,
    "template_parameter_count_illegal": M,
    "isv.BUSINESS_LIMIT_CONTROL": T,  # minute level; see test_flow_control_by_window
    # International codes.
    "isv.NOT_SUPPORTED_COUNTRY": N,
    "isv.COUNTRY_RESTRICTED": N,
}


def test_the_table_and_the_pages_agree_on_which_codes_there_are() -> None:
    assert sorted(set(ERROR_CLASSES) - set(EXPECTED)) == []
    assert sorted(set(EXPECTED) - set(ERROR_CLASSES)) == []


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_each_code_is_classified(code: str, expected: type) -> None:
    assert ERROR_CLASSES[code] is expected
    assert classify_error(code) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InvalidAccessKeyId.NotFound", M),  # by category
        ("InvalidTimeStamp.Expired", M),
        ("Forbidden.RAM", M),
        ("Forbidden.AccessKeyDisabled", M),
        ("Throttling.User", T),
        ("Throttling.Api", T),
        ("InvalidSecurityToken.Malformed", M),
        ("isv.SOMETHING_NEW", T),  # unknown: worth a retry, as the base contract says
        ("SomethingNew", T),
        ("HTTP.404", M),  # an HTTP error without a code: a proxy, a wrong ENDPOINT
        ("HTTP.429", T),
        ("HTTP.502", T),
    ],
)
def test_codes_not_in_the_table(code: str, expected: type) -> None:
    assert classify_error(code) is expected


@pytest.mark.parametrize(
    ("message", "window", "expected", "wait"),
    [
        ("触发分钟级流控Permits:1", "minute", T, 61),
        ("触发小时级流控Permits:5", "hour", P, None),
        ("触发天级流控Permits:10", "day", P, None),
        ("Triggered minute-level flow control", "minute", T, 61),
        ("", "", T, 61),
    ],
)
def test_flow_control_by_window(
    message: str, window: str, expected: type, wait: int | None
) -> None:
    code = "isv.BUSINESS_LIMIT_CONTROL"
    assert flow_control_window(message) == window
    assert classify_error(code, message) is expected
    assert retry_after(code, message) == wait


def test_unclear_outcomes_are_transient() -> None:
    assert all(classify_error(code) is T for code in UNCLEAR_OUTCOMES)
    # Never sent: nothing to look for.
    assert not {"Network.ConnectFailed", "Network.ConnectTimeout"} & UNCLEAR_OUTCOMES


def test_throttling_milliseconds_become_seconds() -> None:
    assert retry_after("Throttling.User", "", 2500) == 2.5
    assert retry_after("Throttling.User", "", 10) == 1.0  # at least a second
    assert retry_after("Throttling.User", "", None) is None


def _wrapped(cause: BaseException) -> BaseException:
    """What darabonba raises for a requests failure: RetryError inside ``except IOError``."""
    from darabonba.exceptions import RetryError

    try:
        raise cause
    except OSError:
        try:
            raise RetryError(str(cause))  # noqa: B904 - as the SDK does
        except RetryError as exc:
            return exc


@pytest.mark.parametrize(
    ("cause", "code"),
    [
        (requests.exceptions.ConnectTimeout(), "Network.ConnectTimeout"),
        (requests.exceptions.ReadTimeout(), "Network.ReadTimeout"),
        (requests.exceptions.ProxyError(), "Network.ConnectFailed"),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(None, "/", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
            ),
            "Network.ConnectFailed",
        ),
        (requests.exceptions.ConnectionError("Connection aborted."), "Network.ConnectionLost"),
        (requests.exceptions.ChunkedEncodingError(), "Network.ConnectionLost"),
    ],
)
def test_network_failures(cause: BaseException, code: str) -> None:
    assert network_code(cause) == code
    assert local_code(_wrapped(cause)) == code


def test_an_interruption_mid_call_is_unclear() -> None:
    class SoftTimeLimitExceeded(Exception):
        pass

    assert local_code(SoftTimeLimitExceeded()) == "Network.Interrupted"
    assert network_code(None) == "Network"


def test_failure_of_an_answer_keeps_code_message_and_request_id() -> None:
    from alibabacloud_tea_openapi.exceptions import ClientException

    exc = ClientException(
        status_code=404,
        code="InvalidAccessKeyId.NotFound",
        message="code: 404, Specified access key is not found. request id: R-1",
        data={"Code": "InvalidAccessKeyId.NotFound", "Message": "not found", "RequestId": "R-1"},
        request_id="R-1",
    )
    assert failure_of(exc) == ("InvalidAccessKeyId.NotFound", "not found", "R-1", None)

    codeless = ClientException(status_code=404, code="None", data={}, request_id="None")
    assert failure_of(codeless)[0] == "HTTP.404"
    assert failure_of(codeless)[2] is None
