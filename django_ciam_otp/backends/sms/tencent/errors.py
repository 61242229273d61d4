"""What each Tencent Cloud SMS answer means for the delivery task.

Three outcomes, the classes of :mod:`django_ciam_otp.backends.base`:

* ``TransientDeliveryError`` (T): a retry within the code's life can succeed;
* ``PermanentDeliveryError`` (P): this message can never succeed (a bad number,
  a per-number limit longer than a code lives), the token fails, quota back;
* ``BackendMisconfigured`` (M): no message can succeed until an operator acts
  (credentials, arrears, IP allow-list, app id, clock, an unapproved template or
  signature, a request this backend builds wrongly): the SMS line stops, ADMINS
  are mailed (see :mod:`django_ciam_otp.breaker`).

Each entry cites where Tencent documents the code; the short comment is what
the page says. Pages:

``[C]``  SMS API 3.0 error codes, common and business codes:
         https://cloud.tencent.com/document/api/382/52075
         (international site: https://www.tencentcloud.com/document/api/382/40474)
``[S]``  SMS API 3.0 send error codes (``SendStatus.Code`` per number):
         https://cloud.tencent.com/document/api/382/59177
``[F]``  default frequency limits ("same content, one message per number per
         30 seconds"): https://www.tencentcloud.com/document/product/382/13303
``[SDK]`` ``tencentcloud/sms/v20210111/errorcodes.py`` (the same descriptions,
         one per code) and, for codes the SDK raises itself,
         ``tencentcloud/common/http/request.py`` (ClientNetworkError),
         ``abstract_client.py`` (ServerNetworkError), ``credential.py``
         (InvalidCredential, ClientSideError), ``profile/client_profile.py``
         (ClientError).

Lookup: the exact code, else its category (the part before the first dot),
else transient (the base contract: anything unexpected is worth a retry).
"""

from __future__ import annotations

from ...base import (
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)

T, P, N, M = (
    TransientDeliveryError,
    PermanentDeliveryError,
    NotDeliverableHere,
    BackendMisconfigured,
)

#: Tencent's answer to a same-content resend within 30 seconds [F].
THIRTY_SECOND_LIMIT = "LimitExceeded.PhoneNumberThirtySecondLimit"
#: Seconds to wait after :data:`THIRTY_SECOND_LIMIT` before the window is over.
THIRTY_SECOND_WINDOW = 31

ERROR_CLASSES: dict[str, type[DeliveryError]] = {
    # --- raised by the SDK itself, no answer from Tencent [SDK] ----------------------
    "ClientNetworkError": T,  # any requests failure; subdivided below (errors.network_code)
    "ServerNetworkError": T,  # HTTP status other than 200 (a gateway's 5xx)
    "ClientError": M,  # SDK misuse: language, signing method
    "ClientParamsError": M,  # SDK misuse: HTTP method
    "InvalidCredential": M,  # empty secret, or one with spaces
    "ClientSideError": M,  # the default credential chain found nothing
    # --- this backend's own codes ----------------------------------------------------------
    "NoSendStatus": T,  # a 200 answer without SendStatusSet: outcome unknown
    "NoSerialNo": T,  # "Ok" without a SerialNo: outcome unknown, receipts unmatchable
    "UnreadableAnswer": T,  # not the documented JSON
    "NoTemplate": M,  # no template configured for this usage, language and region
    "NoCredentials": M,  # the credential provider raised
    "CodeTooLong": N,  # more digits than a verification-code variable takes (this token)
    "ValidityUnderAMinute": N,  # "valid for 0 minutes" cannot be announced (this token)
    # --- common codes [C] ---------------------------------------------------------------
    "ActionOffline": M,  # API offline
    "AuthFailure": M,  # every AuthFailure.*: key, signature, token, MFA, CAM
    "AuthFailure.SignatureExpire": M,  # timestamp over 5 minutes off: fix the clock (NTP)
    "DryRunOperation": M,  # "would succeed, DryRun was passed": nothing is ever sent
    "FailedOperation": P,  # "operation failed"; SMS sub-codes below
    "InternalError": T,  # "internal error"
    "InvalidAction": M,  # "API does not exist"
    "InvalidParameter": P,  # "parameter error (format, type)"
    "InvalidParameterValue": P,  # "parameter value error"
    "InvalidRequest": M,  # "multipart body format error": our request
    "IpInBlacklist": M,  # "IP in the blacklist"
    "IpNotInWhitelist": M,  # "IP not in the allow-list"
    "LimitExceeded": P,  # "quota exceeded"; SMS sub-codes below
    "MissingParameter": M,  # "missing parameter": our request
    "NoSuchProduct": M,
    "NoSuchVersion": M,
    "RequestLimitExceeded": T,  # API call rate (per account, per IP): seconds
    "RequestSizeLimitExceeded": M,  # our request is too big: it always will be
    "ResourceInUse": P,  # "resource in use": SendSms names none; not worth a retry
    "ResourceInsufficient": T,  # "insufficient resources" (Tencent's)
    "ResourceNotFound": M,  # for SendSms the resources are our app, template, signature
    "ResourceUnavailable": T,  # "resource unavailable"
    "ServiceUnavailable": T,
    "UnauthorizedOperation": M,  # CAM; every SMS UnauthorizedOperation.* below
    "UnknownParameter": M,  # our request
    "UnsupportedOperation": P,  # "unsupported operation"; SMS sub-codes below
    "UnsupportedProtocol": M,  # http vs https: ENDPOINT
    "UnsupportedRegion": M,  # the API does not serve REGION
    # --- SMS FailedOperation.* [C][S][SDK] ----------------------------------------------
    "FailedOperation.ContainSensitiveWord": M,  # content (the template) has sensitive words
    "FailedOperation.FailResolvePacket": M,  # request body unparsable: our request
    "FailedOperation.InsufficientBalanceInSmsPackage": M,  # package used up: buy one
    "FailedOperation.JsonParseFail": M,  # request body unparsable
    "FailedOperation.MissingSignatureList": M,  # signature not recognised / not approved
    "FailedOperation.MissingTemplateList": M,  # template not recognised / not approved
    "FailedOperation.OtherError": P,  # "other error, usually parameters that do not
    # meet the requirements" (not a retry)
    "FailedOperation.ParametersOtherError": T,  # "unknown error" (despite its name)
    "FailedOperation.PhoneNumberInBlacklist": P,  # number unsubscribed / carrier do-not-disturb
    "FailedOperation.PhoneNumberParseFail": P,  # number is not E.164
    "FailedOperation.SignIdNotExist": M,
    "FailedOperation.SignatureIncorrectOrUnapproved": M,
    "FailedOperation.TemplateIdNotExist": M,
    "FailedOperation.TemplateIncorrectOrUnapproved": M,
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": M,  # TEMPLATE_PARAMS count
    "FailedOperation.TemplateUnapprovedOrNotExist": M,
    # --- SMS InternalError.* [C][S][SDK] ------------------------------------------------
    "InternalError.JsonParseFail": M,  # "failed to parse the user's parameters"
    "InternalError.OtherError": T,  # "other error, contact support with the number"
    "InternalError.ParseBackendResponseFail": T,  # carrier answer unparsable (may be sent)
    "InternalError.RequestTimeException": M,  # our clock over 10 minutes off: fix NTP
    "InternalError.RestApiInterfaceNotExist": M,
    "InternalError.SendAndRecvFail": T,  # "API or SMS send/receive timeout" (may be sent)
    "InternalError.SigFieldMissing": M,
    "InternalError.SigVerificationFail": M,  # credentials / signing
    "InternalError.Timeout": T,  # "timeout delivering the SMS" (may be sent)
    "InternalError.UnknownError": T,
    # --- SMS InvalidParameter(Value).* [C][S][SDK] ---------------------------------------
    "InvalidParameter.AppidAndBizId": M,  # account and SdkAppId do not match
    "InvalidParameterValue.ContentLengthLimit": M,  # the template is too long
    "InvalidParameterValue.IncorrectPhoneNumber": P,
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": M,
    "InvalidParameterValue.SdkAppIdNotExist": M,
    "InvalidParameterValue.SignNameLengthTooLong": M,
    "InvalidParameterValue.TemplateParameterFormatError": M,  # a verification-code variable
    # takes 0-6 digits; longer codes are refused before the call (CodeTooLong)
    "InvalidParameterValue.TemplateParameterLengthLimit": M,
    # --- SMS LimitExceeded.* [C][S][SDK][F] ----------------------------------------------
    "LimitExceeded.AppCountryOrRegionDailyLimit": P,  # one region's daily cap (console)
    "LimitExceeded.AppCountryOrRegionInBlacklist": P,  # region not allowed (console)
    "LimitExceeded.AppDailyLimit": M,  # the app's daily cap: nothing goes out today
    "LimitExceeded.AppGlobalDailyLimit": P,  # international daily cap (mainland still sends)
    "LimitExceeded.AppMainlandChinaDailyLimit": M,  # mainland daily cap: the default market
    "LimitExceeded.DailyLimit": P,  # international daily cap
    "LimitExceeded.DeliveryFrequencyLimit": P,  # console frequency policy, may be hourly/daily
    "LimitExceeded.GlobalSmsSendingRateLimit": T,  # international send *rate*
    "LimitExceeded.PhoneNumberCountLimit": M,  # over 200 numbers: our request
    "LimitExceeded.PhoneNumberDailyLimit": P,
    "LimitExceeded.PhoneNumberOneHourLimit": P,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": P,
    THIRTY_SECOND_LIMIT: T,  # retried after the window (retry_after), see backend.py
    # --- SMS MissingParameter.* / UnsupportedOperation.* [C][SDK] -------------------------
    "MissingParameter.EmptyPhoneNumberSet": M,  # our request
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": P,  # INTERNATIONAL missing
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": P,
    "UnsupportedOperation.ContainDomesticPhoneNumber": P,
    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone": P,
    "UnsupportedOperation.UnsupportedRegion": P,  # Tencent does not serve that country
}

#: Failures after which Tencent may have accepted the message: the request may
#: have reached it, and the answer (if any) does not say it was refused. The
#: next try asks Tencent before sending again (see ``SMSBackend.send``).
UNCLEAR_OUTCOMES: frozenset[str] = frozenset(
    {
        "ClientNetworkError",  # not classified further: assume the worst
        "ClientNetworkError.ReadTimeout",  # sent, no answer in time
        "ClientNetworkError.ConnectionLost",  # connection broke after the request left
        "ClientNetworkError.Interrupted",  # e.g. the task's soft time limit, mid-call
        "ServerNetworkError",  # a gateway answered 5xx: it may have forwarded the request
        "InternalError.Timeout",
        "InternalError.SendAndRecvFail",
        "InternalError.ParseBackendResponseFail",
        "NoSendStatus",
        "NoSerialNo",
        "UnreadableAnswer",
    }
)


def classify_error(code: str) -> type[DeliveryError]:
    """The exception class for a Tencent error code: exact entry, then its category."""
    if code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    return ERROR_CLASSES.get(code.split(".", 1)[0], TransientDeliveryError)


def network_code(exc: BaseException) -> str:
    """``ClientNetworkError`` made precise from the exception the SDK wrapped.

    The SDK turns every ``requests`` failure into ``ClientNetworkError`` (its
    ``send_request``), so the original is only in ``__context__``. What
    matters is whether the request can have reached Tencent: a connection
    that was never made (refused, DNS, connect timeout, proxy unreachable)
    cannot have sent anything; anything later (read timeout, a connection
    broken mid-way, TLS trouble, an interruption) may have.
    """
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    cause = exc.__context__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return "ClientNetworkError.ConnectTimeout"
    if isinstance(cause, requests.exceptions.ProxyError):
        return "ClientNetworkError.ConnectFailed"
    if isinstance(cause, requests.exceptions.ReadTimeout):
        return "ClientNetworkError.ReadTimeout"
    if isinstance(cause, requests.exceptions.ConnectionError):
        reason = cause.args[0] if cause.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(reason, NewConnectionError):  # refused, or DNS (NameResolutionError)
            return "ClientNetworkError.ConnectFailed"
        return "ClientNetworkError.ConnectionLost"
    if isinstance(cause, requests.exceptions.RequestException):
        return "ClientNetworkError.ConnectionLost"
    if cause is not None:  # not a network error: SoftTimeLimitExceeded and the like
        return "ClientNetworkError.Interrupted"
    return "ClientNetworkError"


def wrapped_code(exc: BaseException) -> str | None:
    """The code for a local exception the SDK wrapped under its own type name.

    ``SmsClient`` methods re-raise anything that is not an SDK exception as
    ``TencentCloudSDKException(type(e).__name__, str(e))``: a body that is not
    JSON (``JSONDecodeError``), one without ``Response`` (``KeyError``), a body
    that broke off (``ChunkedEncodingError``), a soft time limit. ``None`` when
    ``exc`` is a real Tencent answer.
    """
    import requests

    cause = exc.__context__
    code = getattr(exc, "code", None)
    if cause is None or code != type(cause).__name__:
        return None
    if isinstance(cause, requests.exceptions.RequestException):
        return "ClientNetworkError.ConnectionLost"
    if isinstance(cause, ValueError | KeyError | TypeError | AttributeError):
        return "UnreadableAnswer"
    return "ClientNetworkError.Interrupted"
