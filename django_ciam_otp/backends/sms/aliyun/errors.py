"""What each Alibaba Cloud SMS answer means for the delivery task.

Four outcomes, the classes of :mod:`django_ciam_otp.backends.base`:

* ``TransientDeliveryError`` (T): a retry within the code's life can succeed;
* ``PermanentDeliveryError`` (P): this message can never succeed (a bad number,
  a number on the blacklist, a per-number limit longer than a code lives);
* ``NotDeliverableHere`` (N): Alibaba cannot reach this number, another backend may;
* ``BackendMisconfigured`` (M): no message can succeed until an operator acts
  (keys, RAM policy, arrears, an unapproved signature or template, a test
  signature in production, a console cap): the line stops, ADMINS are mailed.

Each entry cites where Alibaba documents the code. Pages:

``[A]``  Dysmsapi API error codes (``Code`` of SendSms):
         https://help.aliyun.com/document_detail/101346.html
         (English: https://help.aliyun.com/en/sms/developer-reference/api-error-codes)
``[F]``  flow control ("same signature, same number: 1 a minute, 5 an hour,
         10 a day"; answered ``isv.BUSINESS_LIMIT_CONTROL`` with the Message
         "触发分钟级流控Permits:1", "触发小时级流控…", "触发天级流控…"):
         https://help.aliyun.com/document_detail/2881383.html
``[G]``  the OpenAPI gateway's common codes, answered with an HTTP 4xx/5xx
         before SendSms runs (signature, AccessKey, throttling):
         https://help.aliyun.com/document_detail/51132.html and
         https://help.aliyun.com/document_detail/435312.html
``[I]``  international codes: https://www.alibabacloud.com/help/doc-detail/116206.htm
``[SDK]`` ``alibabacloud_tea_openapi/client.py`` (``do_request``: 4xx as
         ``ClientException``, 5xx as ``ServerException``, an ``x-acs-retry-after``
         header as ``ThrottlingException``; ``InvalidCredentials`` without a
         credential) and ``darabonba/core.py`` (any ``requests`` failure as
         ``RetryError``, wrapped in ``UnretryableException``).

Lookup: the exact code, else its category (the part before the first dot),
else transient (the base contract: anything unexpected is worth a retry).
"""

from __future__ import annotations

from typing import Any

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

#: Alibaba's per-number flow control [F]; how long it lasts is in the Message.
FLOW_CONTROL = "isv.BUSINESS_LIMIT_CONTROL"
#: Seconds to wait after the minute-level flow control before the window is over.
MINUTE_WINDOW = 61

ERROR_CLASSES: dict[str, type[DeliveryError]] = {
    # --- raised by the SDK or this backend, no answer from Alibaba [SDK] -------------------
    "Network": T,  # a failure in requests, not classified further
    "Network.ConnectFailed": T,  # refused, DNS, proxy: certainly not sent
    "Network.ConnectTimeout": T,  # certainly not sent
    "Network.ReadTimeout": T,  # sent, no answer in time
    "Network.ConnectionLost": T,  # the connection broke after the request left
    "Network.Interrupted": T,  # e.g. the task's soft time limit, mid-call
    "UnreadableAnswer": T,  # not JSON (a gateway's HTML 502 page)
    "NoBizId": T,  # "OK" without a BizId: outcome unknown, receipts unmatchable
    "InvalidCredentials": M,  # the SDK: no credential configured
    "NoCredentials": M,  # the default chain or a credential factory found none
    "NoSignName": M,  # SIGN_NAME not set
    "NoTemplate": M,  # no mainland template for this usage and language
    "NoInternationalTemplate": N,  # no INTERNATIONAL template for the number's region
    "InvalidNumber": P,  # not a phone number libphonenumber can read
    "ValidityUnderAMinute": N,  # "valid for 0 minutes" cannot be announced (this token)
    # --- the gateway's common codes [G] -----------------------------------------------------
    "InvalidAccessKeyId": M,  # .NotFound (404), .Inactive: the key is wrong or disabled
    "Forbidden": M,  # .RAM, .AccessKeyDisabled, .RiskControl, .UserVerification...
    "NoPermission": M,  # RAM: the key may not call dysms:SendSms
    "SignatureDoesNotMatch": M,  # the secret does not belong to the key
    "IncompleteSignature": M,
    "InvalidSignatureMethod": M,
    "InvalidTimeStamp": M,  # .Expired: the clock is over 15 minutes off (fix NTP)
    "SignatureNonceUsed": T,  # a nonce collision: the next try draws another
    "InvalidSecurityToken": M,  # .Malformed, .MismatchWithAccessKey: STS settings
    "InvalidSecurityToken.Expired": T,  # role credentials refresh on the next call
    "InvalidAction": M,  # .NotFound: our request
    "InvalidApi": M,
    "InvalidVersion": M,
    "UnsupportedHTTPMethod": M,
    "MissingParameter": M,  # our request
    "InvalidParameter": M,  # our request
    "Throttling": T,  # .User, .Api: API call rate, seconds
    "InternalError": T,  # 500
    "ServiceUnavailable": T,  # 503
    # --- Dysmsapi codes [A] -------------------------------------------------------------
    "isp.SYSTEM_ERROR": T,  # "system error, call again"
    "isp.GATEWAY_ERROR": T,  # "calling the send module failed, send again"
    "isp.RAM_PERMISSION_DENY": M,  # grant AliyunDysmsFullAccess (or dysms:SendSms)
    "isv.ACCOUNT_ABNORMAL": M,
    "isv.ACCOUNT_NOT_EXISTS": M,  # wrong account or AccessKey
    "isv.AMOUNT_NOT_ENOUGH": M,  # balance (or the region's package) too low
    "isv.BLACK_KEY_CONTROL_LIMIT": P,  # the number unsubscribed or complained: for good
    "isv.CODE_ERROR": M,  # extension codes: none is sent, an account setting
    "isv.CODE_EXCEED_LIMIT": M,
    "isv.CUSTOMER_REFUSED": P,  # the person unsubscribed
    "isv.DAY_LIMIT_CONTROL": M,  # the console's daily total reached: nothing more today
    "isv.DENY_IP_RANGE": M,  # this server's IP is outside the mainland: mainland SMS refused
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": N,  # an international template for a mainland number
    "isv.EXTEND_CODE_ERROR": M,
    "isv.INVALID_JSON_PARAM": M,  # TemplateParam is not JSON of strings: our request
    "isv.INVALID_PARAMETERS": M,  # our request
    "isv.MOBILE_COUNT_OVER_LIMIT": P,  # one number per request: never for a single one
    "isv.MOBILE_NUMBER_ILLEGAL": P,  # the number's format
    "isv.MONTH_LIMIT_CONTROL": M,  # the console's monthly total reached
    "isv.ONE_CODE_MULTIPLE_SIGN": M,
    "isv.OUT_OF_SERVICE": M,  # suspended for arrears, packages notwithstanding
    "isv.PARAM_LENGTH_LIMIT": P,  # a verification-code variable takes 4-6 characters
    "isv.PARAM_NOT_SUPPORT_URL": M,  # the template's variables
    "isv.PRODUCT_UNSUBSCRIBE": M,
    "isv.PRODUCT_UN_SUBSCRIPT": M,  # SMS not activated for the key's account
    "isv.SECURITY_FROZEN_ACCOUNT": M,  # unused for 45 days: frozen until support unfreezes
    "isv.SIGN_STATE_ILLEGAL": M,  # the signature is "unavailable"
    "isv.SMS_CONTENT_ILLEGAL": M,  # the template's text
    "isv.SMS_CONTENT_MISMATCH_TEMPLATE_TYPE": M,
    "isv.SMS_SIGNATURE_ILLEGAL": M,  # no such approved signature under this account
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": M,  # signature and template types differ
    "isv.SMS_SIGN_ILLEGAL": M,  # signature forbidden
    "isv.SMS_TEMPLATE_ILLEGAL": M,  # template code unknown, unapproved, or variables differ
    "isv.SMS_TEST_NUMBER_LIMIT": M,  # a test signature/template: bound test numbers only
    "isv.SMS_TEST_SIGN_TEMPLATE_LIMIT": M,
    "isv.SMS_TEST_TEMPLATE_PARAMS_ILLEGAL": M,
    "isv.TEMPLATE_MISSING_PARAMETERS": M,  # TEMPLATE_PARAMS lacks a template variable
    "isv.TEMPLATE_PARAMS_ILLEGAL": M,  # a variable's declared type does not fit
    "isv.UNSUPPORTED_CONTENT": M,
    "PORT_NOT_REGISTERED": M,  # the signature's real-name filing is not complete
    "template_parameter_count_illegal": M,  # a verification-code template takes one variable
    FLOW_CONTROL: T,  # minute level; hour and day level are P, see classify_error
    # --- international [I] -------------------------------------------------------------------
    "isv.NOT_SUPPORTED_COUNTRY": N,  # Alibaba does not serve that country
    "isv.COUNTRY_RESTRICTED": N,
}

#: Failures after which Alibaba may have accepted the message: the request may
#: have reached it, and the answer (if any) does not say it was refused. The
#: next try asks Alibaba before sending again (see ``SMSBackend.send``).
UNCLEAR_OUTCOMES: frozenset[str] = frozenset(
    {
        "Network",  # not classified further: assume the worst
        "Network.ReadTimeout",
        "Network.ConnectionLost",
        "Network.Interrupted",
        "UnreadableAnswer",  # a gateway's 5xx page: it may have forwarded the request
        "InternalError",
        "ServiceUnavailable",
        "HTTP.500",
        "HTTP.502",
        "HTTP.503",
        "HTTP.504",
        "isp.SYSTEM_ERROR",
        "NoBizId",
    }
)


def flow_control_window(message: Any) -> str:
    """``"minute"``, ``"hour"``, ``"day"`` or ``""``: which flow control window was hit.

    Told by its Message [F]; Alibaba answers in Chinese whatever the caller.
    """
    text = str(message or "").lower()
    for window, markers in (
        ("minute", ("分钟", "minute")),
        ("hour", ("小时", "hour")),
        ("day", ("天", "日", "day")),
    ):
        if any(marker in text for marker in markers):
            return window
    return ""


def classify_error(code: str, message: Any = "") -> type[DeliveryError]:
    """The exception class for an Alibaba error code (and, for flow control, its message).

    Per-number flow control is transient at the minute level and permanent at
    the hour and day levels: a code lives minutes, so waiting an hour cannot
    deliver it. A Message naming no level is taken as the minute level, the
    one an OTP flow hits (a second code within a minute).
    """
    if code == FLOW_CONTROL:
        return P if flow_control_window(message) in ("hour", "day") else T
    if code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if code.startswith("HTTP."):
        status = code.removeprefix("HTTP.")
        # A 4xx without a code: not Alibaba's gateway (a proxy, a wrong ENDPOINT).
        return M if status.startswith("4") and status != "429" else T
    return ERROR_CLASSES.get(code.split(".", 1)[0], TransientDeliveryError)


def retry_after(code: str, message: Any = "", throttled_ms: Any = None) -> float | None:
    """Seconds before a retry can succeed, when the answer says (else ``None``).

    ``throttled_ms``: the SDK's ``ThrottlingException.retry_after``, read from
    the ``x-acs-retry-after`` header; the SDK itself sleeps that many
    milliseconds (``darabonba.core.DaraCore.get_backoff_time``).
    """
    if code == FLOW_CONTROL and classify_error(code, message) is T:
        return MINUTE_WINDOW
    if isinstance(throttled_ms, int | float) and throttled_ms > 0:
        return max(1.0, float(throttled_ms) / 1000)
    return None


# --- what an exception from the SDK was ---------------------------------------------------------


def failure_of(exc: BaseException) -> tuple[str, Any, str | None, Any]:
    """``(code, message, request id, throttled ms)`` of an exception from a client call.

    Told by attributes, not classes, so this module imports no SDK: an answer
    from Alibaba (``ClientException``, ``ServerException``,
    ``ThrottlingException``) has ``status_code``, ``code`` and ``data``;
    anything the SDK caught on the way is inside an ``UnretryableException``
    (``inner_exception``).
    """
    if hasattr(exc, "status_code") and hasattr(exc, "data"):
        data = exc.data if isinstance(exc.data, dict) else {}
        code = str(getattr(exc, "code", None) or "")
        if code in ("", "None"):
            code = f"HTTP.{getattr(exc, 'status_code', None)}"
        message = data.get("Message") or data.get("message") or getattr(exc, "message", "")
        request_id = data.get("RequestId") or data.get("requestId")
        throttled = getattr(exc, "retry_after", None)
        return code, message, str(request_id) if request_id else None, throttled
    inner = getattr(exc, "inner_exception", None)
    if isinstance(inner, BaseException):
        return local_code(inner), type(inner).__name__, None, None
    return local_code(exc), type(exc).__name__, None, None


def local_code(exc: BaseException) -> str:
    """The code for a failure before (or instead of) an answer from Alibaba."""
    name = type(exc).__name__
    if name == "RetryError":  # darabonba / Tea: raised inside ``except IOError``
        return network_code(exc.__context__)
    if name == "CredentialException":  # alibabacloud_credentials: nothing in the chain
        return "NoCredentials"
    import requests

    if isinstance(exc, requests.exceptions.RequestException):
        return network_code(exc)
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        return "UnreadableAnswer"  # a body without the fields models expect
    if isinstance(exc.__context__, ValueError):  # darabonba: RuntimeError from JSONDecodeError
        return "UnreadableAnswer"
    return "Network.Interrupted"


def network_code(cause: BaseException | None) -> str:
    """``Network`` made precise from the ``requests`` exception the SDK wrapped.

    What matters is whether the request can have reached Alibaba: a
    connection that was never made (refused, DNS, connect timeout, proxy
    unreachable) cannot have sent anything; anything later may have.
    """
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return "Network.ConnectTimeout"
    if isinstance(cause, requests.exceptions.ProxyError):
        return "Network.ConnectFailed"
    if isinstance(cause, requests.exceptions.ReadTimeout):
        return "Network.ReadTimeout"
    if isinstance(cause, requests.exceptions.ConnectionError):
        reason = cause.args[0] if cause.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(reason, NewConnectionError):  # refused, or DNS (NameResolutionError)
            return "Network.ConnectFailed"
        return "Network.ConnectionLost"
    if isinstance(cause, requests.exceptions.RequestException):
        return "Network.ConnectionLost"
    if cause is not None:  # not a network error: SoftTimeLimitExceeded and the like
        return "Network.Interrupted"
    return "Network"
