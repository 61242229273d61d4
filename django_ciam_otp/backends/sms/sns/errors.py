"""What each answer of SNS ``Publish`` (and each botocore failure) means for the delivery task.

Four outcomes, the classes of :mod:`django_ciam_otp.backends.base`:

* ``TransientDeliveryError`` (T): a retry within the code's life can succeed;
* ``PermanentDeliveryError`` (P): no provider can deliver this message (a
  number that cannot exist, one that opted out): the token fails, quota back;
* ``NotDeliverableHere`` (N): this account cannot reach this number, another
  backend may (the country is not enabled, the number is not verified in the
  SMS sandbox): the next backend of the route is tried, this one keeps going;
* ``BackendMisconfigured`` (M): no message can succeed until an operator acts
  (credentials, IAM, region, a sender ID SNS refuses): the line stops, ADMINS
  are mailed (see :mod:`django_ciam_otp.breaker`).

Each entry cites where AWS documents the code; the comment is what the page
says. Pages:

``[P]``  Publish, its errors: https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
         (the same list as ``botocore/data/sns/2010-03-31/service-2.json``,
         operation ``Publish``, with each shape's ``error.code``)
``[C]``  errors common to all SNS actions:
         https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html
``[S]``  SNS error shapes of other SMS actions (``OptedOut``, ``Throttled``),
         same ``service-2.json``
``[B]``  ``botocore/exceptions.py``: failures raised before or without an answer,
         named by their class
``[D]``  "Publishing to a mobile phone" (the SMS attributes and their formats):
         https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html
``[X]``  the SMS sandbox: https://docs.aws.amazon.com/sns/latest/dg/sns-sms-sandbox.html

SNS answers most undeliverable SMS with a ``MessageId`` and reports the
failure only in its delivery status logs (an opted-out number, a carrier
block, ``MaxPrice``, an account still under review): see ``docs/sms/sns.md``.

``InvalidParameter`` and ``ParameterValueInvalid`` name what was wrong only in
their message ("Invalid parameter: PhoneNumber Reason: ... is not valid to
publish to"), so :func:`refine` reads it and returns a dotted code below
(``InvalidParameter.PhoneNumber``...). Lookup: the exact code, else its
category (the part before the first dot), else transient (the base contract:
anything unexpected is worth a retry).
"""

from __future__ import annotations

from ...base import (
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from .attributes import is_valid_number

T, P, N, M = (
    TransientDeliveryError,
    PermanentDeliveryError,
    NotDeliverableHere,
    BackendMisconfigured,
)

#: The parameter errors whose message says which parameter was wrong.
PARAMETER_ERRORS = frozenset({"InvalidParameter", "ParameterValueInvalid", "InvalidParameterValue"})

ERROR_CLASSES: dict[str, type[DeliveryError]] = {
    # --- Publish's own errors [P] -----------------------------------------------------------
    "InvalidParameter": P,  # "a request parameter does not comply"; refined below
    "ParameterValueInvalid": P,  # InvalidParameterValueException; refined below
    "InternalError": T,  # "an internal service error" (HTTP 500)
    "NotFound": M,  # "the requested resource does not exist": a topic/target, never a number
    "EndpointDisabled": M,  # mobile push endpoints: not a request this backend makes
    "PlatformApplicationDisabled": M,  # likewise
    "AuthorizationError": M,  # "denied access": IAM lacks sns:Publish (an SCP, a boundary)
    "KMSDisabled": M,  # KMS errors concern encrypted topics; never a retry's business
    "KMSInvalidState": M,
    "KMSNotFound": M,
    "KMSOptInRequired": M,
    "KMSAccessDenied": M,
    "KMSThrottling": T,  # "denied due to request throttling"
    "InvalidSecurity": M,  # "must use an HTTPS endpoint and sign with SigV4": ENDPOINT_URL
    "ValidationException": M,  # "a parameter in the request is invalid": our request
    # --- errors of other SMS actions [S] ----------------------------------------------------
    "Throttled": T,  # HTTP 429, "exceeds the limit for your AWS account"
    "OptedOut": P,  # "opted out of receiving SMS messages from your AWS account"
    # --- common errors [C] ----------------------------------------------------------------------
    "AccessDenied": M,
    "AccessDeniedException": M,  # "You do not have sufficient access"
    "IncompleteSignature": M,
    "InternalFailure": T,  # "an unknown error, exception or failure"
    "InvalidAction": M,
    "InvalidClientTokenId": M,  # "the X.509 certificate or access key ID ... does not exist"
    "InvalidParameterCombination": M,
    "InvalidParameterValue": P,  # "invalid or out-of-range value"; refined below
    "InvalidQueryParameter": M,
    "MalformedQueryString": M,
    "MissingAction": M,
    "MissingAuthenticationToken": M,
    "MissingParameter": M,
    "NotAuthorized": M,
    "OptInRequired": M,  # "the access key ID needs a subscription for the service"
    "RequestExpired": M,  # over 15 minutes off: fix the clock (NTP)
    "RequestTimeTooSkewed": M,
    "SignatureDoesNotMatch": M,  # the secret access key is wrong
    "ExpiredToken": M,  # a SESSION_TOKEN that expired: static temporary keys
    "ExpiredTokenException": M,
    "UnrecognizedClientException": M,
    "ServiceUnavailable": T,  # HTTP 503
    "Throttling": T,  # "Rate exceeded" (the query protocol's ThrottlingException)
    "ThrottlingException": T,
    "ValidationError": M,
    # --- raised by botocore, no answer from SNS [B] ----------------------------------------
    "EndpointConnectionError": T,  # no connection (refused, DNS): nothing was sent
    "ConnectTimeoutError": T,  # nothing was sent
    "ProxyConnectionError": T,  # nothing was sent
    "SSLError": T,  # the TLS handshake failed: nothing was sent
    "ReadTimeoutError": T,  # sent, no answer in time: it may have gone out
    "ConnectionClosedError": T,  # closed after the request left: it may have gone out
    "ResponseStreamingError": T,  # the answer broke off: it may have gone out
    "HTTPClientError": T,  # any other HTTP failure: it may have gone out
    "CredentialRetrievalError": T,  # a credential provider (container, IMDS, process) failed
    "NoCredentialsError": M,  # boto3's chain found nothing
    "PartialCredentialsError": M,
    "ProfileNotFound": M,  # PROFILE names no profile of ~/.aws/config
    "NoRegionError": M,  # no REGION, AWS_DEFAULT_REGION or profile region
    "InvalidRegionError": M,
    "UnknownEndpointError": M,
    "EndpointResolutionError": M,
    "ParamValidationError": M,  # the request this backend built fails the service model
    # --- this backend's own codes -----------------------------------------------------------
    "InvalidEndpoint": M,  # ENDPOINT_URL is not a URL (botocore's ValueError)
    "NoMessageId": T,  # an answer without MessageId: outcome unknown
    "UnreadableAnswer": T,  # a body botocore cannot parse (ResponseParserError): outcome unknown
    "Interrupted": T,  # not a botocore failure (the task's soft time limit): may have gone out
    # --- InvalidParameter(s) refined by their message (refine()) [P][D][X] ------------------
    "InvalidParameter.PhoneNumber": P,  # refused, and phonenumbers knows no such number
    "InvalidParameter.PhoneNumberNotReachable": N,  # refused, yet a valid number: the
    # account or region cannot publish there ("not valid to publish to"); another may
    "InvalidParameter.Sandbox": N,  # the SMS sandbox: only verified destinations [X]
    "InvalidParameter.OptedOut": P,
    "InvalidParameter.Attributes": M,  # SenderID, OriginationNumber, MaxPrice, SMSType [D]
    "InvalidParameter.Message": M,  # empty or over 1,600 bytes: the site's SMS template
    "AuthorizationError.Sandbox": N,  # the same sandbox refusal, if phrased as a denial
}

#: Failures after which SNS may have taken the message. SNS has no idempotency
#: key for SMS (``MessageDeduplicationId`` is for FIFO topics) and no API to
#: look a sent SMS up, so a retry after one of these may send the code twice.
UNCLEAR_OUTCOMES: frozenset[str] = frozenset(
    {
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ResponseStreamingError",
        "HTTPClientError",
        "NoMessageId",
        "UnreadableAnswer",
        "Interrupted",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)

_ATTRIBUTE_WORDS = (
    "senderid",
    "originationnumber",
    "maxprice",
    "smstype",
    "messageattributes",
    "message attribute",
    "entityid",
    "templateid",
)


def refine(code: str, message: str, phone_number: str) -> str:
    """The dotted code for an answer whose code alone does not decide (see the table).

    SNS names the faulty parameter only in the message: "Invalid parameter:
    PhoneNumber Reason: ..." for a number, the attribute's name for a sender
    ID or origination number it refuses. A refused number that phonenumbers
    holds valid is not this recipient's fault: most often the account or its
    region cannot send to that country (or the account is in the SMS sandbox,
    where only verified numbers are allowed), and another backend may reach it.
    """
    text = (message or "").lower()
    if code == "AuthorizationError":
        return "AuthorizationError.Sandbox" if "sandbox" in text else code
    if code not in PARAMETER_ERRORS:
        return code
    if "sandbox" in text or "not verified" in text or "unverified" in text:
        return "InvalidParameter.Sandbox"
    if "opted out" in text or "opt-out" in text or "optedout" in text:
        return "InvalidParameter.OptedOut"
    if any(word in text for word in _ATTRIBUTE_WORDS):
        return "InvalidParameter.Attributes"
    if "phonenumber" in text or "phone number" in text:
        if is_valid_number(phone_number):
            return "InvalidParameter.PhoneNumberNotReachable"
        return "InvalidParameter.PhoneNumber"
    if "message" in text:
        return "InvalidParameter.Message"
    return code


def classify_error(code: str) -> type[DeliveryError]:
    """The exception class for a code: exact entry, then its category, else transient."""
    if code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    return ERROR_CLASSES.get(code.split(".", 1)[0], TransientDeliveryError)


def local_code(exc: BaseException, sdk_exceptions: object) -> str:
    """The code of a failure raised without an SNS answer: botocore's class name, or ours.

    botocore's own classes are named by the most specific class the table
    knows (``ConnectTimeoutError`` before its base ``EndpointConnectionError``);
    one it does not know keeps its own name (and counts as transient).
    """
    botocore_error = getattr(sdk_exceptions, "BotoCoreError", None)
    if botocore_error is not None and isinstance(exc, botocore_error):
        for cls in type(exc).__mro__:
            if cls.__name__ in ERROR_CLASSES:
                return cls.__name__
        return type(exc).__name__
    if type(exc).__name__ == "ResponseParserError":  # botocore.parsers: a body it cannot read
        return "UnreadableAnswer"
    if isinstance(exc, ValueError) and "endpoint" in str(exc).lower():
        return "InvalidEndpoint"
    return "Interrupted"
