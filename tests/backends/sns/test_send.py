"""The AWS SNS SMS backend: what it publishes, what it returns, what it never logs.

SNS is answered by ``botocore.stub.Stubber`` on the backend's own client
(the request is validated against botocore's SNS model, no HTTP), except where
only a real request shows the behaviour (botocore's debug logs): there a
loopback server answers with the XML the Publish page documents.

The last test talks to the real service and is skipped unless its variables
are in the environment (see ``LIVE_ENV``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.base import (
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.sns import SMSBackend

from ..contract import SMSBackendContract
from .support import (
    CODE,
    MESSAGE_ID,
    PHONE,
    REQUEST_ID,
    FakeSNS,
    Recorder,
    publish_answer,
)

Configure = Callable[..., None]
TRANSACTIONAL = {"DataType": "String", "StringValue": "Transactional"}


def make_message(**kwargs: Any) -> OTPMessage:
    values: dict[str, Any] = {
        "channel": "sms",
        "recipient": PHONE,
        "code": CODE,
        "usage": "login",
        "validity_seconds": 300,
        "token_id": 7,
    }
    values.update(kwargs)
    return OTPMessage(**values)


def attributes_sent(stub: Stubber, backend: SMSBackend, **message: Any) -> dict[str, Any]:
    recorder = Recorder(backend.get_client())
    stub.add_response("publish", publish_answer())
    backend.send(make_message(**message))
    return dict(recorder.calls[-1]["MessageAttributes"])


# --- the contract every SMS backend keeps ---------------------------------------------------


class TestSNSContract(SMSBackendContract[SMSBackend]):
    @pytest.fixture
    def backend(self, configure: Configure) -> Iterator[SMSBackend]:  # type: ignore[override]
        configure()
        backend = SMSBackend()
        client = backend.get_client()
        self.recorder = Recorder(client)
        with Stubber(client) as stubber:
            for _ in range(20):
                stubber.add_response("publish", publish_answer())
            yield backend

    def delivered(self, backend: SMSBackend, message_id: str) -> tuple[str, str]:
        params = self.recorder.sent[message_id]
        return params["PhoneNumber"], params["Message"]


# --- the request SNS receives ---------------------------------------------------------------


def test_publishes_the_text_to_the_number_as_transactional(
    backend: SMSBackend, stub: Stubber
) -> None:
    stub.add_response(
        "publish",
        {"MessageId": MESSAGE_ID, "ResponseMetadata": {"RequestId": REQUEST_ID}},
        expected_params={
            "PhoneNumber": PHONE,
            "Message": f"Your verification code for Log in is {CODE}. "
            "It is valid for 5 minutes. Do not share it.",
            "MessageAttributes": {"AWS.SNS.SMS.SMSType": TRANSACTIONAL},
        },
    )

    assert backend.send(make_message()) == MESSAGE_ID
    stub.assert_no_pending_responses()


def test_every_attribute_when_set(configure: Configure) -> None:
    configure(SENDER_ID="Acme", ORIGINATION_NUMBER="+18445550100", MAX_PRICE="0.50")
    backend = SMSBackend()
    with Stubber(backend.get_client()) as stub:
        sent = attributes_sent(stub, backend)

    assert sent == {
        "AWS.SNS.SMS.SMSType": TRANSACTIONAL,
        "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "Acme"},
        "AWS.MM.SMS.OriginationNumber": {"DataType": "String", "StringValue": "+18445550100"},
        "AWS.SNS.SMS.MaxPrice": {"DataType": "Number", "StringValue": "0.5"},
    }


@pytest.mark.parametrize(
    ("phone", "sender_id", "origination"),
    [
        ("+4915112345678", "AcmeDE", None),  # DE: its own sender ID
        ("+447700900123", "Acme", None),  # GB: the default
        ("+14255550123", None, "+18445550100"),  # US: no sender IDs there, a toll-free number
    ],
)
def test_sender_id_and_origination_number_by_destination_country(
    configure: Configure, phone: str, sender_id: str | None, origination: str | None
) -> None:
    configure(
        SENDER_ID={"DE": "AcmeDE", "US": None, "default": "Acme"},
        ORIGINATION_NUMBER={"US": "+18445550100"},
    )
    backend = SMSBackend()
    with Stubber(backend.get_client()) as stub:
        sent = attributes_sent(stub, backend, recipient=phone)

    assert sent.get("AWS.SNS.SMS.SenderID", {}).get("StringValue") == sender_id
    assert sent.get("AWS.MM.SMS.OriginationNumber", {}).get("StringValue") == origination


def test_keyword_arguments_override_the_settings(configure: Configure) -> None:
    configure(SENDER_ID="Acme")
    backend = SMSBackend(sms_type="Promotional", sender_id="Other", max_price=0.02)
    with Stubber(backend.get_client()) as stub:
        sent = attributes_sent(stub, backend)

    assert sent["AWS.SNS.SMS.SMSType"]["StringValue"] == "Promotional"
    assert sent["AWS.SNS.SMS.SenderID"]["StringValue"] == "Other"
    assert sent["AWS.SNS.SMS.MaxPrice"]["StringValue"] == "0.02"


def test_an_answer_without_message_id_is_transient(backend: SMSBackend, stub: Stubber) -> None:
    stub.add_response("publish", {})

    with pytest.raises(TransientDeliveryError) as excinfo:
        backend.send(make_message())
    assert excinfo.value.provider_code == "NoMessageId"


def test_names_and_receipts() -> None:
    assert SMSBackend.settings_key == "SNS_SMS"
    assert SMSBackend.configured_name() == "sns"
    assert SMSBackend.receives_receipts is False


def test_describe_names_no_secret(backend: SMSBackend) -> None:
    text = backend.describe()
    assert "us-east-1" in text
    assert backend.config["SECRET_ACCESS_KEY"] not in text
    assert backend.config["ACCESS_KEY_ID"] not in text


# --- the opt-out check ----------------------------------------------------------------------


def test_an_opted_out_number_fails_without_a_publish(configure: Configure) -> None:
    configure(CHECK_OPT_OUT=True)
    backend = SMSBackend()
    with Stubber(backend.get_client()) as stub:
        stub.add_response(
            "check_if_phone_number_is_opted_out",
            {"isOptedOut": True},
            expected_params={"phoneNumber": PHONE},
        )
        with pytest.raises(PermanentDeliveryError) as excinfo:
            backend.send(make_message())
        stub.assert_no_pending_responses()  # and no publish was attempted (none queued)

    assert type(excinfo.value) is PermanentDeliveryError
    assert excinfo.value.provider_code == "OptedOut"
    assert PHONE not in excinfo.value.reason


def test_a_number_not_opted_out_is_sent(configure: Configure) -> None:
    configure(CHECK_OPT_OUT=True)
    backend = SMSBackend()
    with Stubber(backend.get_client()) as stub:
        stub.add_response("check_if_phone_number_is_opted_out", {"isOptedOut": False})
        stub.add_response("publish", publish_answer(MESSAGE_ID))
        assert backend.send(make_message()) == MESSAGE_ID
        stub.assert_no_pending_responses()


def test_a_failed_opt_out_check_still_sends(
    configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    configure(CHECK_OPT_OUT=True)
    backend = SMSBackend()
    with Stubber(backend.get_client()) as stub:
        stub.add_client_error(
            "check_if_phone_number_is_opted_out", "AuthorizationError", http_status_code=403
        )
        stub.add_response("publish", publish_answer(MESSAGE_ID))
        assert backend.send(make_message()) == MESSAGE_ID

    assert "opt-out check for +142****0123 failed: AuthorizationError" in caplog.text


def test_no_opt_out_check_by_default(backend: SMSBackend, stub: Stubber) -> None:
    stub.add_response("publish", publish_answer(MESSAGE_ID))  # a check first would not match

    assert backend.send(make_message()) == MESSAGE_ID


# --- settings no message can be sent with ---------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"SMS_TYPE": "transactional"},
        {"TIMEOUT": 0},
        {"SECRET_ACCESS_KEY": None},
        {"ACCESS_KEY_ID": None, "SECRET_ACCESS_KEY": None, "SESSION_TOKEN": "token"},
        {"SENDER_ID": "Acme Corp"},
        {"SENDER_ID": {"DE": "far-too-long-id"}},
        {"ORIGINATION_NUMBER": "4255550100x"},
        {"MAX_PRICE": -1},
        {"CHECK_OPT_OUT": "yes"},
    ],
)
def test_unusable_settings_fail_at_construction(
    configure: Configure, overrides: dict[str, Any]
) -> None:
    configure(**overrides)

    with pytest.raises(ImproperlyConfigured):
        SMSBackend()


def test_without_boto3_the_error_names_the_extra(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "boto3.session", None)  # import fails as if absent

    with pytest.raises(ImproperlyConfigured, match=r'pip install "django-ciam-otp\[sns\]"'):
        SMSBackend()


def test_importing_the_backend_does_not_import_boto3() -> None:
    code = (
        "import sys, django; django.setup(); "
        "import django_ciam_otp.backends.sms.sns as m; "
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('boto3', 'botocore')))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


# --- one client per process -----------------------------------------------------------------


def test_one_client_per_process_and_configuration(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(TIMEOUT=5)
    client = SMSBackend().get_client()

    assert SMSBackend().get_client() is client
    assert client.meta.region_name == "us-east-1"
    assert client.meta.config.connect_timeout == 2
    assert client.meta.config.read_timeout == 3
    assert client.meta.config.retries["total_max_attempts"] == 1  # the task retries
    assert SMSBackend(region="eu-west-1").get_client() is not client

    monkeypatch.setattr(os, "getpid", lambda: -1)  # a forked child
    assert SMSBackend().get_client() is not client


def test_changed_settings_build_a_new_client(configure: Configure) -> None:
    configure()
    client = SMSBackend().get_client()
    configure(REGION="ap-southeast-1")

    assert SMSBackend().get_client() is not client


# --- nothing secret reaches the logs --------------------------------------------------------


def test_logs_hold_neither_code_nor_phone_number(
    configure: Configure, fake: FakeSNS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # botocore logs request parameters and bodies at DEBUG
    configure(ENDPOINT_URL=fake.url)
    backend = SMSBackend()

    assert backend.send(make_message()) == MESSAGE_ID
    fake.reply = (400, "InvalidParameter", f"Invalid parameter: PhoneNumber Reason: {PHONE} x")
    with pytest.raises(NotDeliverableHere) as excinfo:  # a valid number SNS refused
        backend.send(make_message())

    assert fake.received[0]["PhoneNumber"] == [PHONE]  # it did go out, over HTTP
    assert PHONE not in excinfo.value.reason and CODE not in excinfo.value.reason
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "+142****0123" in text  # the backend did log, masked
    assert "botocore" in {record.name.split(".")[0] for record in caplog.records}
    assert CODE not in text
    assert PHONE.lstrip("+") not in text


def test_a_retry_after_an_unclear_try_says_so(
    backend: SMSBackend, stub: Stubber, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="django_ciam_otp")
    stub.add_response("publish", publish_answer())

    backend.send(make_message(attempt=1, previous_error="ReadTimeoutError"))

    assert "ended unclearly (ReadTimeoutError)" in caplog.text


# --- live -----------------------------------------------------------------------------------

# LIVE TEST: sends one real SMS (and costs one message) through Amazon SNS.
# Runs only when AWS_SNS_LIVE_TO (an E.164 number you own; verified in the SMS
# sandbox if the account is still there) and AWS credentials are set:
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE. The region is
# AWS_SNS_LIVE_REGION, else AWS_DEFAULT_REGION (boto3 does not read AWS_REGION).
LIVE_TO = os.environ.get("AWS_SNS_LIVE_TO", "")
LIVE_CREDENTIALS = bool(
    (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"))
    or os.environ.get("AWS_PROFILE")
)
LIVE_REGION = os.environ.get("AWS_SNS_LIVE_REGION") or os.environ.get("AWS_DEFAULT_REGION")


@pytest.mark.skipif(
    not (LIVE_TO and LIVE_CREDENTIALS and LIVE_REGION),
    reason="live AWS SNS: set AWS_SNS_LIVE_TO, AWS credentials and a region",
)
def test_live_send_through_amazon_sns(configure: Configure) -> None:
    configure(
        REGION=LIVE_REGION,
        ACCESS_KEY_ID=None,  # boto3's default chain: the environment or AWS_PROFILE
        SECRET_ACCESS_KEY=None,
        SENDER_ID=os.environ.get("AWS_SNS_LIVE_SENDER_ID") or None,
        TIMEOUT=10,
    )

    message_id = SMSBackend().send(make_message(recipient=LIVE_TO, code="123456"))

    assert isinstance(message_id, str) and message_id
