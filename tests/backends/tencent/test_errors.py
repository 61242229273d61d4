"""Tencent's error codes, classified from Tencent's pages, independently of the backend's table.

``EXPECTED`` was written from the pages themselves (the description of each
code on https://cloud.tencent.com/document/api/382/52075, the send error codes
on https://cloud.tencent.com/document/api/382/59177, the SDK's errorcodes.py
which repeats them), not copied from ``ERROR_CLASSES``; a code the SDK lists
and this table does not is a decision still to make, and fails the test.

The question asked of each: can a retry within the code's life (minutes)
succeed (T); can this message never succeed (P); or can no message succeed
until someone changes the account, the console or the settings (M)?
"""

from __future__ import annotations

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from django_ciam_otp.backends.base import (
    BackendMisconfigured,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.tencent import ERROR_CLASSES, UNCLEAR_OUTCOMES, classify_error
from django_ciam_otp.backends.sms.tencent.errors import network_code

T, P, M = TransientDeliveryError, PermanentDeliveryError, BackendMisconfigured

EXPECTED = {
    # Codes the SDK raises without asking Tencent.
    "ClientNetworkError": T,  # requests failed: refused, DNS, timeouts
    "ClientNetworkError.ReadTimeout": T,
    "ClientNetworkError.ConnectFailed": T,
    "ServerNetworkError": T,  # HTTP 5xx from a gateway
    "ClientError": M,  # "Language invalid", "Invalid signature method"
    "ClientParamsError": M,  # "Method only support (GET, POST)"
    "InvalidCredential": M,  # "secret id should not be none or empty"
    "ClientSideError": M,  # "no valid credential"
    # Common codes (52075).
    "ActionOffline": M,  # API offline
    "AuthFailure.InvalidAuthorization": M,
    "AuthFailure.InvalidSecretId": M,  # not a Cloud API key
    "AuthFailure.MFAFailure": M,
    "AuthFailure.SecretIdNotFound": M,  # key deleted or disabled
    "AuthFailure.SignatureExpire": M,  # clock over 5 minutes off
    "AuthFailure.SignatureFailure": M,
    "AuthFailure.TokenFailure": M,
    "AuthFailure.UnauthorizedOperation": M,  # CAM
    "DryRunOperation": M,  # a request that would never send
    "FailedOperation": P,
    "InternalError": T,
    "InvalidAction": M,
    "InvalidParameter": P,
    "InvalidParameterValue": P,
    "InvalidRequest": M,  # malformed body: ours, every time
    "IpInBlacklist": M,
    "IpNotInWhitelist": M,
    "LimitExceeded": P,
    "MissingParameter": M,
    "NoSuchProduct": M,
    "NoSuchVersion": M,
    "RequestLimitExceeded": T,  # call rate, per second
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded": T,
    "RequestLimitExceeded.IPLimitExceeded": T,
    "RequestLimitExceeded.UinLimitExceeded": T,
    "RequestSizeLimitExceeded": M,
    "ResourceInUse": P,
    "ResourceInsufficient": T,
    "ResourceNotFound": M,
    "ResourceUnavailable": T,
    "ServiceUnavailable": T,
    "UnauthorizedOperation": M,
    "UnknownParameter": M,
    "UnsupportedOperation": P,
    "UnsupportedProtocol": M,
    "UnsupportedRegion": M,
    # FailedOperation.* (SDK errorcodes.py / 59177).
    "FailedOperation.ContainSensitiveWord": M,  # the approved content is now refused
    "FailedOperation.FailResolvePacket": M,  # our request body
    "FailedOperation.ForbidAddMarketingTemplates": P,  # template management only
    "FailedOperation.InsufficientBalanceInSmsPackage": M,  # buy a package
    "FailedOperation.JsonParseFail": M,  # our request body
    "FailedOperation.MarketingSendTimeConstraint": P,  # marketing SMS only
    "FailedOperation.MissingSignature": P,  # template management only
    "FailedOperation.MissingSignatureList": M,  # signature not approved
    "FailedOperation.MissingSignatureToModify": P,
    "FailedOperation.MissingTemplateList": M,  # template not approved
    "FailedOperation.MissingTemplateToModify": P,
    "FailedOperation.NotEnterpriseCertification": P,
    "FailedOperation.OtherError": P,  # "usually parameters not meeting requirements"
    "FailedOperation.ParametersOtherError": T,  # "unknown error"
    "FailedOperation.PhoneNumberInBlacklist": P,
    "FailedOperation.PhoneNumberParseFail": P,
    "FailedOperation.ProhibitSubAccountUse": P,  # template listing only
    "FailedOperation.QualificationIdNotApproved": P,
    "FailedOperation.SignIdNotExist": M,
    "FailedOperation.SignNumberLimit": P,
    "FailedOperation.SignatureIncorrectOrUnapproved": M,
    "FailedOperation.TemplateAlreadyPassedCheck": P,
    "FailedOperation.TemplateIdNotExist": M,
    "FailedOperation.TemplateIncorrectOrUnapproved": M,
    "FailedOperation.TemplateNumberLimit": P,
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": M,  # parameter count
    "FailedOperation.TemplateUnapprovedOrNotExist": M,
    # InternalError.*.
    "InternalError.JsonParseFail": M,  # "failed to parse the user's parameters"
    "InternalError.OtherError": T,
    "InternalError.ParseBackendResponseFail": T,
    "InternalError.RequestTimeException": M,  # clock over 10 minutes off
    "InternalError.RestApiInterfaceNotExist": M,
    "InternalError.SendAndRecvFail": T,
    "InternalError.SigFieldMissing": M,
    "InternalError.SigVerificationFail": M,
    "InternalError.Timeout": T,
    "InternalError.UnknownError": T,
    # InvalidParameter(Value).*.
    "InvalidParameter.AppidAndBizId": M,  # account and app id do not match
    "InvalidParameter.DirtyWordFound": P,
    "InvalidParameter.InvalidParameters": P,
    "InvalidParameterValue.BeginTimeVerifyFail": P,  # status pulls only
    "InvalidParameterValue.ContentLengthLimit": M,  # the template is too long
    "InvalidParameterValue.EndTimeVerifyFail": P,
    "InvalidParameterValue.ImageInvalid": P,
    "InvalidParameterValue.IncorrectPhoneNumber": P,
    "InvalidParameterValue.InvalidDocumentType": P,
    "InvalidParameterValue.InvalidInternational": P,
    "InvalidParameterValue.InvalidSignPurpose": P,
    "InvalidParameterValue.InvalidSmsType": P,
    "InvalidParameterValue.InvalidStartTime": P,
    "InvalidParameterValue.InvalidTemplateFormat": P,
    "InvalidParameterValue.InvalidUsedMethod": P,
    "InvalidParameterValue.LimitVerifyFail": P,
    "InvalidParameterValue.MarketingTemplateWithoutUnsubscribe": P,
    "InvalidParameterValue.MultiSmsInfoSetEmpty": P,
    "InvalidParameterValue.OffsetVerifyFail": P,
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": M,
    "InvalidParameterValue.QualificationIdNotFound": P,
    "InvalidParameterValue.SdkAppIdNotExist": M,
    "InvalidParameterValue.SignAlreadyPassedCheck": P,
    "InvalidParameterValue.SignExistAndUnapproved": P,
    "InvalidParameterValue.SignNameLengthTooLong": M,  # our SIGN_NAME
    "InvalidParameterValue.TemplateParameterFormatError": M,  # template takes other params
    "InvalidParameterValue.TemplateParameterLengthLimit": M,
    "InvalidParameterValue.TemplateWithDirtyWords": P,
    "InvalidParameterValue.UnsupportedTemplateVariable": P,
    # LimitExceeded.*.
    "LimitExceeded.AppCountryOrRegionDailyLimit": P,  # one region, until tomorrow
    "LimitExceeded.AppCountryOrRegionInBlacklist": P,  # one region
    "LimitExceeded.AppDailyLimit": M,  # the whole app, until tomorrow
    "LimitExceeded.AppGlobalDailyLimit": P,  # international only
    "LimitExceeded.AppMainlandChinaDailyLimit": M,  # the mainland, until tomorrow
    "LimitExceeded.DailyLimit": P,  # international daily
    "LimitExceeded.DeliveryFrequencyLimit": P,  # console policy, may be hours
    "LimitExceeded.GlobalSmsSendingRateLimit": T,  # a rate
    "LimitExceeded.PhoneNumberCountLimit": M,  # over 200 numbers: never ours
    "LimitExceeded.PhoneNumberDailyLimit": P,
    "LimitExceeded.PhoneNumberOneHourLimit": P,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": P,
    "LimitExceeded.PhoneNumberThirtySecondLimit": T,  # after 31 s (or: sent earlier)
    # MissingParameter.*, UnauthorizedOperation.*, UnsupportedOperation.*.
    "MissingParameter.EmptyPhoneNumberSet": M,
    "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny": M,
    "UnauthorizedOperation.RequestIpNotInWhitelist": M,
    "UnauthorizedOperation.RequestPermissionDeny": M,
    "UnauthorizedOperation.SdkAppIdIsDisabled": M,
    "UnauthorizedOperation.ServiceSuspendDueToArrears": M,
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": M,
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": P,  # this region's templates
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": P,
    "UnsupportedOperation.ContainDomesticPhoneNumber": P,
    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone": P,
    "UnsupportedOperation.UnsupportedRegion": P,  # Tencent does not serve the country
    # Not documented yet: a new code in a known category is decided by its category...
    "LimitExceeded.SomeNewDailyQuota": P,
    "FailedOperation.SomethingNew": P,
    "InternalError.SomethingNew": T,
    "AuthFailure.SomethingNew": M,
    "UnauthorizedOperation.SomethingNew": M,
    # ... and anything else is worth a retry (the base contract).
    "SomethingNew": T,
    "SomethingNew.NobodyDocumented": T,
    "JSONDecodeError": T,
}

# Outcomes after which Tencent may have accepted the message.
UNCLEAR = {
    "ClientNetworkError.ReadTimeout",
    "ClientNetworkError.ConnectionLost",
    "ClientNetworkError.Interrupted",
    "ServerNetworkError",
    "InternalError.Timeout",
    "InternalError.SendAndRecvFail",
    "NoSerialNo",
}
CLEAR = {
    "ClientNetworkError.ConnectFailed",  # no connection: nothing was sent
    "ClientNetworkError.ConnectTimeout",
    "RequestLimitExceeded",  # Tencent's answer: refused
    "LimitExceeded.PhoneNumberThirtySecondLimit",
    "AuthFailure.SignatureFailure",
    "InternalError.OtherError",
}


def sdk_codes() -> set[str]:
    from tencentcloud.sms.v20210111 import errorcodes  # type: ignore[import-untyped]

    return {v for k, v in vars(errorcodes).items() if k.isupper() and isinstance(v, str)}


def test_every_code_the_sdk_lists_has_a_decision() -> None:
    assert sdk_codes(), "the SDK's error table moved"
    assert sorted(sdk_codes() - set(EXPECTED)) == []


def test_every_category_is_in_the_backends_table() -> None:
    """A new category in the SDK should be a decision, not a silent 'transient'."""
    categories = {code.split(".", 1)[0] for code in sdk_codes()}
    assert sorted(categories - set(ERROR_CLASSES)) == []


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_classification(code: str, expected: type[Exception]) -> None:
    assert classify_error(code) is expected


@pytest.mark.parametrize("code", sorted(UNCLEAR))
def test_unclear_outcomes(code: str) -> None:
    assert code in UNCLEAR_OUTCOMES
    assert classify_error(code) is T


@pytest.mark.parametrize("code", sorted(CLEAR))
def test_clear_outcomes(code: str) -> None:
    assert code not in UNCLEAR_OUTCOMES


class Wrapped(Exception):
    """What the SDK raises: its exception, with the original as ``__context__``."""


def sdk_wrap(original: BaseException) -> Exception:
    """As tencentcloud.common.http.request.ApiRequest.send_request does."""
    try:
        try:
            raise original
        except Exception:
            raise Wrapped("ClientNetworkError")  # noqa: B904 - the SDK does exactly this
    except Wrapped as exc:
        return exc


@pytest.mark.parametrize(
    ("original", "code"),
    [
        (requests.exceptions.ConnectTimeout("connect"), "ClientNetworkError.ConnectTimeout"),
        (requests.exceptions.ReadTimeout("read"), "ClientNetworkError.ReadTimeout"),
        (requests.exceptions.ProxyError("proxy"), "ClientNetworkError.ConnectFailed"),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(None, "/", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
            ),
            "ClientNetworkError.ConnectFailed",
        ),
        (
            requests.exceptions.ConnectionError(ProtocolError("Connection aborted.")),
            "ClientNetworkError.ConnectionLost",
        ),
        (requests.exceptions.SSLError("bad record mac"), "ClientNetworkError.ConnectionLost"),
        (RuntimeError("soft time limit"), "ClientNetworkError.Interrupted"),
    ],
)
def test_network_errors_say_whether_anything_was_sent(original: Exception, code: str) -> None:
    assert network_code(sdk_wrap(original)) == code


def test_a_network_error_of_unknown_origin_is_unclear() -> None:
    assert network_code(Wrapped("ClientNetworkError")) == "ClientNetworkError"
    assert "ClientNetworkError" in UNCLEAR_OUTCOMES
