"""The Twilio backend at the HTTP level: the real SDK, Twilio's answers mocked by ``responses``.

What Twilio receives (the form the SDK posts), what the backend returns for a
created message, and what it keeps out of logs. Error answers are in
``test_errors.py``. The last test talks to the real service and is skipped
unless credentials are in the environment (see ``LIVE_ENV``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.base import Accepted, OTPMessage, PermanentDeliveryError
from django_ciam_otp.backends.sms.twilio import SMSBackend
from tests.backends.contract import SMSBackendContract
from tests.backends.contract import make_message as contract_message

from .fake import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    CALLBACK,
    CODE,
    FROM_NUMBER,
    MESSAGES_URL,
    PHONE,
    SERVICE_SID,
    FakeTwilio,
    error,
)

Configure = Callable[..., None]
ROOT = Path(__file__).resolve().parents[3]


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


# --- the contract every SMS backend keeps ----------------------------------------------


class TestTwilioContract(SMSBackendContract[SMSBackend]):
    @pytest.fixture
    def backend(self, fake: FakeTwilio, configure: Configure) -> SMSBackend:
        configure()
        self.fake = fake
        return SMSBackend()

    def delivered(self, backend: SMSBackend, message_id: Any) -> tuple[str, str]:
        """What Twilio was asked to send, read from the form the SDK posted."""
        sid = message_id.message_id if isinstance(message_id, Accepted) else message_id
        form = self.fake.by_sid[sid].form
        return form["To"], form["Body"]

    def test_send_returns_a_non_empty_str_id(self, backend: SMSBackend) -> None:
        """Twilio's backend returns an ``Accepted`` (it knows the segments and country)."""
        sent = backend.send(contract_message())
        assert isinstance(sent, Accepted)
        assert isinstance(sent.message_id, str) and sent.message_id.startswith("SM")


# --- what Twilio receives ---------------------------------------------------------------


def test_a_message_from_a_number(backend: SMSBackend, fake: FakeTwilio) -> None:
    sent = backend.send(make_message(validity_seconds=300))

    [request] = fake.requests
    assert request.url == MESSAGES_URL
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form == {
        "To": PHONE,
        "From": FROM_NUMBER,
        "Body": f"Your verification code for Log in is {CODE}. "
        "It is valid for 5 minutes. Do not share it.",
        "StatusCallback": CALLBACK,
        "ValidityPeriod": "300",
    }
    assert sent == Accepted(sent.message_id, fee=1, region="US")
    assert sent.message_id in fake.by_sid


def test_a_message_through_a_messaging_service(fake: FakeTwilio, configure: Configure) -> None:
    configure(FROM_NUMBER=None, MESSAGING_SERVICE_SID=SERVICE_SID)

    sent = SMSBackend().send(make_message())

    form = fake.last.form
    assert form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in form
    assert sent.fee is None  # the service reports 0 segments until it picks a sender
    assert sent.region == "US"


def test_an_api_key_authenticates_the_account_s_requests(
    fake: FakeTwilio, configure: Configure
) -> None:
    configure(AUTH_TOKEN=None, API_KEY_SID=API_KEY_SID, API_KEY_SECRET=API_KEY_SECRET)

    SMSBackend().send(make_message())

    assert fake.last.auth == (API_KEY_SID, API_KEY_SECRET)
    assert fake.last.url == MESSAGES_URL  # still the account's Messages


def test_without_status_callback_twilio_is_asked_for_none(
    fake: FakeTwilio, configure: Configure
) -> None:
    configure(STATUS_CALLBACK=None)

    SMSBackend().send(make_message())

    assert "StatusCallback" not in fake.last.form


@pytest.mark.parametrize(
    ("setting", "validity_seconds", "sent"),
    [
        (True, 120, "120"),  # the code's own life: a late code is dropped, not delivered
        (True, 86400, "36000"),  # Twilio's maximum
        (600, 120, "600"),
        (None, 120, None),  # Twilio's default
        (False, 120, None),
    ],
)
def test_validity_period(
    fake: FakeTwilio, configure: Configure, setting: Any, validity_seconds: int, sent: str | None
) -> None:
    configure(VALIDITY_PERIOD=setting)

    SMSBackend().send(make_message(validity_seconds=validity_seconds))

    assert fake.last.form.get("ValidityPeriod") == sent


def test_keyword_arguments_beat_the_settings(fake: FakeTwilio, configure: Configure) -> None:
    configure()

    SMSBackend(from_number="+14155550100", validity_period=60).send(make_message())

    assert fake.last.form["From"] == "+14155550100"
    assert fake.last.form["ValidityPeriod"] == "60"


def test_region_and_edge_pick_twilio_s_host(fake: FakeTwilio, configure: Configure) -> None:
    configure(REGION="ie1", EDGE="dublin")

    SMSBackend().send(make_message())

    assert fake.last.url == (
        f"https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    )


def test_twilio_environment_variables_are_ignored(
    fake: FakeTwilio, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK reads TWILIO_* for anything not passed: the settings are the only source."""
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "9" * 32)
    configure()

    SMSBackend().send(make_message())

    assert fake.last.url == MESSAGES_URL


def test_one_client_per_process_and_configuration(configure: Configure) -> None:
    configure()
    first = SMSBackend().get_client()

    assert SMSBackend().get_client() is first  # its HTTP session is reused
    assert SMSBackend(timeout=3).get_client() is not first


# --- settings no message can go out with ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"ACCOUNT_SID": None}, "ACCOUNT_SID"),
        ({"AUTH_TOKEN": None}, "AUTH_TOKEN"),
        ({"API_KEY_SID": API_KEY_SID}, "API_KEY_SECRET"),
        ({"FROM_NUMBER": None}, "exactly one"),
        ({"MESSAGING_SERVICE_SID": SERVICE_SID}, "exactly one"),
        ({"TIMEOUT": 0}, "TIMEOUT"),
    ],
)
def test_unusable_settings_fail_when_the_backend_is_built(
    configure: Configure, overrides: dict[str, Any], named: str
) -> None:
    configure(**overrides)

    with pytest.raises(ImproperlyConfigured, match=named) as excinfo:
        SMSBackend()

    assert AUTH_TOKEN not in str(excinfo.value)


def test_a_missing_sdk_names_the_pip_extra(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    monkeypatch.setitem(sys.modules, "twilio.rest", None)

    with pytest.raises(ImproperlyConfigured, match=r'pip install "django-ciam-otp\[twilio\]"'):
        SMSBackend()


def test_importing_the_backend_does_not_import_the_sdk() -> None:
    """Without the SDK installed, the package imports and its checks say what is missing."""
    script = """
import sys
sys.modules["twilio"] = None  # as if not installed: any import of it fails
import django
django.setup()
from django_ciam_otp.backends.loading import shipped_backends
from django_ciam_otp.backends.sms.twilio import SMSBackend, checks
assert SMSBackend in shipped_backends()
assert [m.id for m in checks.run()][0] == "ciam_otp.E121", checks.run()
print("ok")
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.stdout.strip() == "ok", result.stderr


# --- nothing secret reaches the logs ----------------------------------------------------


def test_logs_hold_neither_code_nor_phone_number(
    backend: SMSBackend, fake: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK logs each request and answer at INFO

    backend.send(make_message())
    fake.reply = error(400, 21614, f"The 'To' number {PHONE} (code {CODE}) is not a mobile.")
    with pytest.raises(PermanentDeliveryError) as excinfo:
        backend.send(make_message())

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "twilio.http_client" in {record.name for record in caplog.records}
    assert "+141****2671" in text  # the backend did log, masked
    assert CODE not in text and "4155552671" not in text
    assert CODE not in excinfo.value.reason and "4155552671" not in excinfo.value.reason
    assert AUTH_TOKEN not in text


# --- live ---------------------------------------------------------------------------------

# LIVE TEST: sends one real SMS (and costs one message) through Twilio.
# Runs only when TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_LIVE_TO and a sender
# (TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID) are set.
LIVE_ENV = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_LIVE_TO")
LIVE_SENDER = ("TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID")
LIVE = all(os.environ.get(n) for n in LIVE_ENV) and any(os.environ.get(n) for n in LIVE_SENDER)


@pytest.mark.skipif(
    not LIVE,
    reason="live Twilio SMS: set " + ", ".join(LIVE_ENV) + " and " + " or ".join(LIVE_SENDER),
)
def test_live_send_through_twilio(configure: Configure) -> None:
    from_number = os.environ.get("TWILIO_FROM_NUMBER") or None
    configure(
        ACCOUNT_SID=os.environ["TWILIO_ACCOUNT_SID"],
        AUTH_TOKEN=os.environ["TWILIO_AUTH_TOKEN"],
        FROM_NUMBER=from_number,
        MESSAGING_SERVICE_SID=None if from_number else os.environ["TWILIO_MESSAGING_SERVICE_SID"],
        STATUS_CALLBACK=None,
        TIMEOUT=10,
    )

    sent = SMSBackend().send(make_message(recipient=os.environ["TWILIO_LIVE_TO"], code="123456"))

    assert sent.message_id.startswith("SM")
