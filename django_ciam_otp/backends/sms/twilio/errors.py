"""What each Twilio answer means for the delivery task.

Four outcomes, the classes of :mod:`django_ciam_otp.backends.base`:

* ``TransientDeliveryError`` (T): a retry within the code's life can succeed;
* ``PermanentDeliveryError`` (P): no provider can deliver this message (a number
  that is not a mobile, a recipient who sent STOP): the token fails, quota back;
* ``NotDeliverableHere`` (N): this account cannot reach this number, another
  backend may (a destination country not enabled, a sender the carrier refuses);
* ``BackendMisconfigured`` (M): no message can succeed until an operator acts
  (credentials, a suspended account, a sender the account does not own, an
  unregistered 10DLC number): the backend stops, the next one is tried.

Every code is Twilio's, documented at ``https://www.twilio.com/docs/api/errors/<code>``
(the index: https://www.twilio.com/docs/api/errors); the comment says what that
page says. Codes 30xxx are normally reported after the message was accepted, in
status callbacks (a receipt's ``status``); they are classified too, for an API
answer that carries one.

Lookup: the exact code; else the HTTP status: 401/403/404 (M: credentials,
``ACCOUNT_SID``, the Messaging Service), 429 and 5xx (T), any other 4xx (N:
Twilio refused this request for a reason this table does not know, and a retry
of the same request would be refused again; another backend may deliver it,
and this one is not stopped for everyone on a guess); no HTTP answer at all: T.
"""

from __future__ import annotations

from ...base import (
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from ..sdk_support import scrub as shared_scrub

T, P, N, M = (
    TransientDeliveryError,
    PermanentDeliveryError,
    NotDeliverableHere,
    BackendMisconfigured,
)

ERRORS_URL = "https://www.twilio.com/docs/api/errors/{}"

ERROR_CLASSES: dict[int, type[DeliveryError]] = {
    # --- the account and the API ---------------------------------------------------
    20003: M,  # authentication failed: wrong ACCOUNT_SID, AUTH_TOKEN or API key
    20005: M,  # account not active: out of funds, or the trial not activated
    20404: M,  # resource not found: the account (or the service) in the URL
    20429: T,  # too many concurrent requests: "never processed, safe to retry"
    20500: T,  # internal server error
    20503: T,  # service unavailable: "try again with exponential back-off"
    # --- the recipient -------------------------------------------------------------
    21211: P,  # invalid 'To' phone number
    21265: P,  # 'To' is a short code: Twilio numbers cannot message short codes
    21266: P,  # 'To' and 'From' are the same number
    21610: P,  # the recipient unsubscribed (replied STOP) from this sender
    21614: P,  # 'To' is not a valid mobile number (a landline, or invalid)
    21635: P,  # 'To' is a landline, in a country where Twilio does not try those
    # --- this account cannot reach this number, another provider may ---------------
    21408: N,  # Messaging Geo Permissions: the destination country is not enabled
    21608: N,  # trial account: 'To' is not a verified number
    21612: N,  # the 'To'/'From' combination cannot be routed (sender rules, no route)
    # --- the sender, the service, the request: an operator must act ------------------
    21602: M,  # message body required: a site template that renders empty
    21603: M,  # 'From' required: neither FROM_NUMBER nor MESSAGING_SERVICE_SID
    21606: M,  # 'From' is not a message-capable number of this account (see below)
    21609: M,  # invalid StatusCallback URL: STATUS_CALLBACK
    21611: M,  # the sender's queue holds over 10 hours: nothing would arrive in time
    21617: M,  # body over 1600 characters: the SMS template
    21624: M,  # invalid validity period: VALIDITY_PERIOD
    21659: M,  # 'From' is not a Twilio number, or a short code abroad (see below)
    21660: M,  # 'From' does not belong to the account of the credentials
    21661: M,  # 'From' is not SMS-capable
    21701: M,  # the Messaging Service does not exist in this account
    21702: T,  # the Messaging Service is not available to send new messages: retry
    21703: M,  # the Messaging Service has no sender to send with
    21730: T,  # system under maintenance: "try again later"
    # --- after acceptance (status callbacks) -----------------------------------------
    30001: T,  # queue overflow (a Messaging Service's pool)
    30002: M,  # account suspended after the message was queued
    30003: T,  # unreachable destination handset (off, out of coverage)
    30005: P,  # unknown destination handset (the number does not exist)
    30006: P,  # landline or unreachable carrier
    30007: N,  # message filtered by the carrier (another sender may pass)
    30008: T,  # unknown error
    30032: M,  # toll-free number not verified
    30034: M,  # US A2P 10DLC: message from an unregistered number
    30036: T,  # validity period expired while queued
}

#: 'From' refusals that, for a short code, mean "not in this recipient's
#: country" (21606, 21659): the next backend may reach the number.
SHORT_CODE_COUNTRY_MISMATCH: frozenset[int] = frozenset({21606, 21659})

#: This backend's own codes, for failures with no Twilio code.
LOCAL_CODES: dict[str, type[DeliveryError]] = {
    "ConnectFailed": T,  # refused, DNS, TLS handshake, proxy: nothing reached Twilio
    "ConnectTimeout": T,  # likewise
    "ReadTimeout": T,  # sent, no answer in time: Twilio may have accepted it
    "ConnectionLost": T,  # broke after the request left: likewise
    "Interrupted": T,  # stopped mid-call (the task's soft time limit): likewise
    "UnreadableAnswer": T,  # a 2xx answer that is not the documented JSON
    "NoSid": T,  # a 2xx answer without the message's sid: receipts cannot match it
}


#: Failures after which Twilio may have created the message (with a 5xx answer): a retry
#: can send the code a second time, so failover leaves the message to this backend.
UNCLEAR_OUTCOMES: frozenset[str] = frozenset(
    {"ReadTimeout", "ConnectionLost", "Interrupted", "UnreadableAnswer", "NoSid"}
)


def classify_error(code: int | str | None, status: int | None = None) -> type[DeliveryError]:
    """The exception class for a Twilio error ``code`` and the answer's HTTP ``status``."""
    if isinstance(code, str) and code in LOCAL_CODES:
        return LOCAL_CODES[code]
    try:
        number = int(code) if code is not None else None
    except (TypeError, ValueError):
        number = None
    if number is not None and number in ERROR_CLASSES:
        return ERROR_CLASSES[number]
    if status is None and number is not None and 100 <= number < 600:
        status = number  # the SDK puts the HTTP status in ``code`` for a body without one
    if status in (401, 403, 404):
        return M
    if status == 429 or (status is not None and status >= 500):
        return T
    if status is not None and 400 <= status < 500:
        return N
    return T


def network_code(exc: BaseException) -> str:
    """One of :data:`LOCAL_CODES` for an exception raised instead of an answer.

    ``TwilioHttpClient`` lets ``requests`` exceptions through unwrapped. What
    matters is whether the request can have reached Twilio: a connection that
    was never made cannot have sent anything; anything later may have.
    """
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "ConnectTimeout"
    if isinstance(exc, requests.exceptions.ProxyError | requests.exceptions.SSLError):
        return "ConnectFailed"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "ReadTimeout"
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps it
        return "ConnectFailed" if isinstance(reason, NewConnectionError) else "ConnectionLost"
    if isinstance(exc, requests.exceptions.RequestException):
        return "ConnectionLost"
    if isinstance(exc, ValueError | KeyError | TypeError):
        return "UnreadableAnswer"
    return "Interrupted"


def scrub(text: str, message: OTPMessage) -> str:
    """``text`` without the code or the phone number, in any spelling Twilio echoes.

    Twilio's error messages quote the number ("The 'To' number +1555... is not
    a valid phone number"), so they are scrubbed before they reach a log or the
    token's failure reason.
    """
    return " ".join(shared_scrub(text, message).split())


def docs_url(code: int | str | None) -> str:
    """The page of Twilio's error dictionary for ``code`` (for log lines)."""
    return ERRORS_URL.format(code)
