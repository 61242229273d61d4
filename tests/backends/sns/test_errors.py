"""SNS's answers and botocore's failures, classified independently of the backend's table.

``EXPECTED`` was written from AWS's pages (the Publish errors,
https://docs.aws.amazon.com/sns/latest/api/API_Publish.html; the common
errors, https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html) and
botocore's exception classes, not copied from ``ERROR_CLASSES``; an error
botocore's SNS model lists for Publish that the table lacks fails the test.

The question asked of each: can a retry within the code's life (minutes)
succeed (T); can no provider deliver this message (P); can another backend
reach this number where this account cannot (N); or can no message succeed
until someone changes the account, IAM or the settings (M)?

Every service code is also answered through ``Stubber`` on the backend's real
client, and the network failures are real: a closed loopback port, a server
that never answers.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from django_ciam_otp.backends.base import (
    BackendMisconfigured,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.sns import (
    ERROR_CLASSES,
    UNCLEAR_OUTCOMES,
    SMSBackend,
    classify_error,
    refine,
)
from django_ciam_otp.backends.sms.sns.errors import local_code

from .support import PHONE, FakeSNS
from .test_send import make_message

T, P, N, M = (
    TransientDeliveryError,
    PermanentDeliveryError,
    NotDeliverableHere,
    BackendMisconfigured,
)
Configure = Callable[..., None]

EXPECTED = {
    # Publish's errors (API_Publish.html; service-2.json "Publish" errors).
    "InvalidParameter": P,  # unrefined: about this message
    "ParameterValueInvalid": P,
    "InternalError": T,  # 500
    "NotFound": M,  # topics and targets, which this backend never names
    "EndpointDisabled": M,
    "PlatformApplicationDisabled": M,
    "AuthorizationError": M,  # 403: IAM
    "KMSDisabled": M,
    "KMSInvalidState": M,
    "KMSNotFound": M,
    "KMSOptInRequired": M,
    "KMSAccessDenied": M,
    "KMSThrottling": T,
    "InvalidSecurity": M,  # "use an HTTPS endpoint and SigV4"
    "ValidationException": M,
    # Other SMS actions' errors.
    "Throttled": T,  # 429
    "OptedOut": P,
    # Common errors.
    "AccessDenied": M,
    "AccessDeniedException": M,
    "IncompleteSignature": M,
    "InternalFailure": T,
    "InvalidAction": M,
    "InvalidClientTokenId": M,
    "InvalidParameterCombination": M,
    "InvalidParameterValue": P,
    "InvalidQueryParameter": M,
    "MalformedQueryString": M,
    "MissingAction": M,
    "MissingAuthenticationToken": M,
    "MissingParameter": M,
    "NotAuthorized": M,
    "OptInRequired": M,
    "RequestExpired": M,  # the clock
    "RequestTimeTooSkewed": M,
    "SignatureDoesNotMatch": M,
    "ExpiredToken": M,
    "ExpiredTokenException": M,
    "UnrecognizedClientException": M,
    "ServiceUnavailable": T,
    "Throttling": T,
    "ThrottlingException": T,
    "ValidationError": M,
    # botocore, without an answer.
    "EndpointConnectionError": T,
    "ConnectTimeoutError": T,
    "ProxyConnectionError": T,
    "SSLError": T,
    "ReadTimeoutError": T,
    "ConnectionClosedError": T,
    "ResponseStreamingError": T,
    "HTTPClientError": T,
    "CredentialRetrievalError": T,
    "NoCredentialsError": M,
    "PartialCredentialsError": M,
    "ProfileNotFound": M,
    "NoRegionError": M,
    "InvalidRegionError": M,
    "UnknownEndpointError": M,
    "EndpointResolutionError": M,
    "ParamValidationError": M,
    # The backend's own.
    "InvalidEndpoint": M,
    "NoMessageId": T,
    "UnreadableAnswer": T,
    "Interrupted": T,
    # Parameter errors, refined by their message.
    "InvalidParameter.PhoneNumber": P,
    "InvalidParameter.PhoneNumberNotReachable": N,
    "InvalidParameter.Sandbox": N,
    "InvalidParameter.OptedOut": P,
    "InvalidParameter.Attributes": M,
    "InvalidParameter.Message": M,
    "AuthorizationError.Sandbox": N,
}

#: Codes botocore raises or the backend makes up, without an answer from SNS.
LOCAL_CODES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ProxyConnectionError",
        "SSLError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ResponseStreamingError",
        "HTTPClientError",
        "CredentialRetrievalError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "ProfileNotFound",
        "NoRegionError",
        "InvalidRegionError",
        "UnknownEndpointError",
        "EndpointResolutionError",
        "ParamValidationError",
        "InvalidEndpoint",
        "NoMessageId",
        "UnreadableAnswer",
        "Interrupted",
    }
)
#: Codes SNS itself answers with (the dotted ones are the backend's reading of a message).
SERVICE_CODES = sorted(code for code in EXPECTED if "." not in code and code not in LOCAL_CODES)


def test_the_table_is_the_pages() -> None:
    assert {code: cls.__name__ for code, cls in ERROR_CLASSES.items()} == {
        code: cls.__name__ for code, cls in EXPECTED.items()
    }


def test_every_publish_error_of_botocores_model_is_decided() -> None:
    model = botocore.session.get_session().get_service_model("sns")
    codes = {shape.error_code for shape in model.operation_model("Publish").error_shapes}

    assert codes - set(ERROR_CLASSES) == set()
    assert {"InvalidParameter", "ParameterValueInvalid", "AuthorizationError"} <= codes


def test_unknown_codes_are_transient_and_categories_decide_subcodes() -> None:
    assert classify_error("SomethingNew") is T
    assert classify_error("AuthorizationError.SomethingNew") is M
    assert classify_error("InvalidParameter.SomethingNew") is P


@pytest.mark.parametrize("code", SERVICE_CODES)
def test_each_service_code_through_the_client(
    backend: SMSBackend, stub: Stubber, code: str
) -> None:
    status = 500 if EXPECTED[code] is T else 400
    stub.add_client_error("publish", code, "Something went wrong.", http_status_code=status)

    with pytest.raises(EXPECTED[code]) as excinfo:
        backend.send(make_message())

    assert type(excinfo.value) is EXPECTED[code]
    assert excinfo.value.provider_code == code
    assert excinfo.value.reason.startswith(f"AWS SNS {code}")


# --- parameter errors, read by their message ------------------------------------------------

INVALID_NUMBER = "+1555"  # phonenumbers: no such number anywhere


@pytest.mark.parametrize(
    ("code", "message", "phone", "refined"),
    [
        # The number SNS refuses: the recipient's fault only if it cannot exist.
        (
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: {p} is not valid to publish to",
            INVALID_NUMBER,
            "InvalidParameter.PhoneNumber",
        ),
        (
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: {p} is not valid to publish to",
            PHONE,
            "InvalidParameter.PhoneNumberNotReachable",
        ),
        (
            "ParameterValueInvalid",
            "Invalid phone number {p}",
            PHONE,
            "InvalidParameter.PhoneNumberNotReachable",
        ),
        # The SMS sandbox: only verified destinations.
        (
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: the account is in the "
            "SMS sandbox and {p} is not verified",
            PHONE,
            "InvalidParameter.Sandbox",
        ),
        (
            "AuthorizationError",
            "Not authorized: account is in the SMS sandbox",
            PHONE,
            "AuthorizationError.Sandbox",
        ),
        ("InvalidParameter", "Phone number {p} is opted out", PHONE, "InvalidParameter.OptedOut"),
        # What this backend sends on the site's behalf: the settings.
        (
            "ParameterValueInvalid",
            "Invalid parameter: MessageAttributes Reason: AWS.SNS.SMS.SenderID is invalid",
            PHONE,
            "InvalidParameter.Attributes",
        ),
        (
            "InvalidParameter",
            "Invalid parameter: OriginationNumber Reason: not in the account",
            PHONE,
            "InvalidParameter.Attributes",
        ),
        (
            "InvalidParameterValue",
            "Value for MaxPrice is out of range",
            PHONE,
            "InvalidParameter.Attributes",
        ),
        (
            "InvalidParameter",
            "Invalid parameter: Message too long",
            PHONE,
            "InvalidParameter.Message",
        ),
        # Nothing to read: the code decides.
        ("InvalidParameter", "Invalid parameter", PHONE, "InvalidParameter"),
        (
            "AuthorizationError",
            "User is not authorized to perform: SNS:Publish",
            PHONE,
            "AuthorizationError",
        ),
        ("Throttling", "Rate exceeded", PHONE, "Throttling"),
    ],
)
def test_parameter_errors_are_read_by_their_message(
    backend: SMSBackend, stub: Stubber, code: str, message: str, phone: str, refined: str
) -> None:
    text = message.format(p=phone)
    assert refine(code, text, phone) == refined
    stub.add_client_error("publish", code, text, http_status_code=400)

    with pytest.raises(EXPECTED[refined]) as excinfo:
        backend.send(make_message(recipient=phone))

    assert type(excinfo.value) is EXPECTED[refined]
    assert excinfo.value.provider_code == refined
    assert phone not in excinfo.value.reason  # masked


# --- failures without an answer: real ones --------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_transient_and_clear(
    configure: Configure, closed_port: int
) -> None:
    configure(ENDPOINT_URL=f"http://127.0.0.1:{closed_port}")

    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "EndpointConnectionError"
    assert excinfo.value.provider_code not in UNCLEAR_OUTCOMES  # nothing can have gone out


def test_no_answer_in_time_is_transient_and_unclear(configure: Configure, fake: FakeSNS) -> None:
    fake.reply = "hang"
    configure(ENDPOINT_URL=fake.url, TIMEOUT=0.6)

    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "ReadTimeoutError"
    assert excinfo.value.provider_code in UNCLEAR_OUTCOMES  # it may have gone out
    assert len(fake.received) == 1  # botocore did not retry


def test_an_unreadable_answer_is_transient_and_unclear(configure: Configure, fake: FakeSNS) -> None:
    fake.reply = "garbage"
    configure(ENDPOINT_URL=fake.url)

    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "UnreadableAnswer"
    assert excinfo.value.provider_code in UNCLEAR_OUTCOMES


def test_no_region_stops_the_line(configure: Configure) -> None:
    configure(REGION=None)  # and none in the (isolated) environment

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "NoRegionError"


def test_an_unknown_profile_stops_the_line(configure: Configure) -> None:
    configure(ACCESS_KEY_ID=None, SECRET_ACCESS_KEY=None, PROFILE="nowhere")

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "ProfileNotFound"


def test_no_credentials_stop_the_line(configure: Configure, closed_port: int) -> None:
    configure(
        ACCESS_KEY_ID=None, SECRET_ACCESS_KEY=None, ENDPOINT_URL=f"http://127.0.0.1:{closed_port}"
    )

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "NoCredentialsError"


@pytest.fixture
def interrupting(backend: SMSBackend) -> Iterator[SMSBackend]:
    """The client raises a foreign exception mid-call (as a Celery soft time limit would)."""

    def interrupt(**kwargs: Any) -> None:
        raise RuntimeError("SoftTimeLimitExceeded")

    events = backend.get_client().meta.events
    events.register("before-call.sns.Publish", interrupt, unique_id="test-interrupt")
    yield backend
    events.unregister("before-call.sns.Publish", unique_id="test-interrupt")


def test_a_foreign_exception_is_an_unclear_interruption(interrupting: SMSBackend) -> None:
    with pytest.raises(TransientDeliveryError) as excinfo:
        interrupting.send(make_message())

    assert excinfo.value.provider_code == "Interrupted"
    assert "Interrupted" in UNCLEAR_OUTCOMES


def test_local_codes_prefer_the_most_specific_known_class() -> None:
    import botocore.exceptions as exceptions

    timeout = exceptions.ConnectTimeoutError(endpoint_url="https://x")
    assert local_code(timeout, exceptions) == "ConnectTimeoutError"  # not its base
    assert local_code(exceptions.UnknownCredentialError(name="x"), exceptions) == (
        "UnknownCredentialError"
    )
    assert classify_error("UnknownCredentialError") is T
    assert local_code(ValueError("Invalid endpoint: x y"), exceptions) == "InvalidEndpoint"
