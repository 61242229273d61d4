"""The SMS backend of docs/sms-backends.md works: its code, from the page, against a fake gateway.

The page's example is a whole module (``myproject/sms_gateway.py``). It is
loaded from the Markdown as it stands, so the docs cannot show a backend that
does not run. The fake gateway is an ``http.server`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp import checks as otp_checks
from django_ciam_otp.backends.base import (
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.models import DeliveryStatus, OTPToken

PAGE = Path(__file__).resolve().parents[2] / "docs" / "sms-backends.md"
MODULE = "docs_example_sms_gateway"
PHONE = "+8613612345678"


def example_source() -> str:
    text = PAGE.read_text(encoding="utf-8")
    block = re.compile(r"^<!-- example:sms_gateway\.py -->\n```python\n(.*?)^```$", re.M | re.S)
    match = block.search(text)
    assert match, f"{PAGE.name}: no python block after <!-- example:sms_gateway.py -->"
    return match.group(1)


@pytest.fixture(scope="module")
def example() -> Iterator[types.ModuleType]:
    """The page's module, importable by name (so it can be CIAM_OTP["SMS_BACKEND"])."""
    module = types.ModuleType(MODULE)
    module.__file__ = str(PAGE)
    sys.modules[MODULE] = module
    try:
        exec(compile(example_source(), str(PAGE), "exec"), module.__dict__)  # noqa: S102
        yield module
    finally:
        del sys.modules[MODULE]


@dataclass
class FakeGateway:
    """What the gateway answers next, and what it was sent."""

    url: str
    status: int = 201
    body: bytes = b'{"id": "msg-1"}'
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    state: FakeGateway

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = FakeGateway(url=f"http://127.0.0.1:{server.server_port}/v1/messages")
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def backend(example: types.ModuleType, gateway: FakeGateway) -> Callable[..., Any]:
    def make(**overrides: Any) -> Any:
        options = {"url": gateway.url, "api_key": "key-123", "sender": "MySite", **overrides}
        return example.SMSBackend(**options)

    return make


def message(code: str = "482913") -> OTPMessage:
    return OTPMessage(
        channel="sms",
        recipient=PHONE,
        code=code,
        usage="signup",
        validity_seconds=60,
        token_id=42,
    )


def test_accepted_message_returns_the_gateways_id(backend, gateway):
    assert backend().send(message()) == "msg-1"

    (request,) = gateway.requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["Authorization"] == "Bearer key-123"
    assert request["headers"]["Content-Type"] == "application/json"
    sent = request["json"]
    assert (sent["to"], sent["from"], sent["reference"]) == (PHONE, "MySite", "otp-42")
    assert "482913" in sent["text"]  # rendered from the app's template


def test_accepted_with_an_unexpected_body_is_not_retried(backend, gateway):
    gateway.status, gateway.body = 200, b"OK"
    assert backend().send(message()) == ""


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 408])
def test_busy_gateway_is_transient(backend, gateway, status):
    gateway.status, gateway.body = status, b'{"error": "throttled"}'
    with pytest.raises(TransientDeliveryError) as caught:
        backend().send(message())
    assert caught.value.provider_code == "throttled"
    assert str(status) in caught.value.reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_refusal_is_permanent_and_quotes_neither_number_nor_code(backend, gateway, status):
    gateway.status = status
    gateway.body = json.dumps({"error": f"invalid number {PHONE}, code 482913"}).encode()
    with pytest.raises(PermanentDeliveryError) as caught:
        backend().send(message())
    assert caught.value.provider_code == f"HTTP{status}"
    assert "13612345678" not in caught.value.reason
    assert "482913" not in caught.value.reason


def test_error_code_of_the_gateway_is_kept(backend, gateway):
    gateway.status, gateway.body = 400, b'{"error": "invalid_number"}'
    with pytest.raises(PermanentDeliveryError) as caught:
        backend().send(message())
    assert caught.value.provider_code == "invalid_number"
    assert caught.value.reason == "SMS gateway refused: 400 invalid_number"


def test_timeout_is_transient(backend, gateway):
    gateway.delay = 1.0
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        backend(timeout=0.2).send(message())


def test_connection_refused_is_transient(backend):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        backend(url=f"http://127.0.0.1:{port}/v1/messages").send(message())


def gateway_settings(settings: Any, **entries: Any) -> None:
    """``CIAM_OTP["SMS_GATEWAY"]`` (the backend's ``settings_key``) holds ``entries``."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_GATEWAY": entries}


@pytest.mark.parametrize("overrides", [{"url": ""}, {"api_key": ""}, {"url": "file:///etc/passwd"}])
def test_unusable_options_are_permanent(example, settings, backend, gateway, overrides):
    gateway_settings(settings)
    with pytest.raises(PermanentDeliveryError, match="SMS_GATEWAY needs"):
        backend(**overrides).send(message())
    assert not gateway.requests


@pytest.mark.parametrize(
    ("entries", "named"), [({"API_KEY": "k"}, "URL"), ({"URL": "u"}, "API_KEY")]
)
def test_a_missing_setting_is_named_when_the_backend_is_built(example, settings, entries, named):
    gateway_settings(settings, **entries)
    with pytest.raises(
        ImproperlyConfigured, match=re.escape(f'CIAM_OTP["SMS_GATEWAY"]["{named}"]')
    ):
        example.SMSBackend()


def test_settings_come_from_SMS_GATEWAY(example, settings, gateway):
    gateway_settings(settings, URL=gateway.url, API_KEY="from-settings", TIMEOUT=2)
    backend = example.SMSBackend()
    assert (backend.url, backend.api_key, backend.sender, backend.timeout) == (
        gateway.url,
        "from-settings",
        None,
        2.0,
    )
    assert backend.describe().endswith(f"sms_gateway.SMSBackend ({urlsplit(gateway.url).netloc})")


def test_keyword_arguments_beat_the_settings(example, settings, gateway):
    gateway_settings(settings, URL="https://sms.example.net", API_KEY="setting", SENDER="Site")
    backend = example.SMSBackend(api_key="kwarg", sender=None)  # None: not given
    assert (backend.url, backend.api_key, backend.sender) == (
        "https://sms.example.net",
        "kwarg",
        "Site",
    )


def test_system_check(example, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{MODULE}.SMSBackend"}
    gateway_settings(settings, URL="http://sms.example.net/v1/messages")
    ids = [error.id for error in example.SMSBackend.check()]
    assert ids == ["sms_gateway.E001", "sms_gateway.E002"]
    assert all(isinstance(e, checks.Error) for e in example.SMSBackend.check())
    # manage.py check runs it through the hook, and knows the backend's key (no E002).
    assert core_ids() == ids

    gateway_settings(settings, URL="https://sms.example.net/v1/messages", API_KEY="k")
    assert example.SMSBackend.check() == []
    assert core_ids() == []

    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKEND": "django_ciam_otp.backends.sms.locmem.SMSBackend",
        "SMS_GATEWAY": {},
    }
    assert core_ids() == ["ciam_otp.E002"]  # not configured: its key is a probable typo


def core_ids() -> list[str]:
    """What ``manage.py check`` says about the backend and its key (W015 etc. aside)."""
    return [
        m.id
        for m in otp_checks.check_settings()
        if m.id and (m.id.startswith("sms_gateway.") or m.id == "ciam_otp.E002")
    ]


def test_codes_sent_through_the_api_reach_the_gateway(example, settings, gateway, api, api_client):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{MODULE}.SMSBackend"}
    gateway_settings(settings, URL=gateway.url, API_KEY="key-123")

    response = api.send({"usage": "signup", "phone_number": "13612345678"}, auth=api_client)

    assert response.status_code == 200, response.content
    (request,) = gateway.requests
    assert request["json"]["to"] == PHONE
    code = re.search(r"\b(\d{6})\b", request["json"]["text"]).group(1)
    token = OTPToken.objects.get()
    assert (token.delivery_status, token.provider_message_id) == (DeliveryStatus.SENT, "msg-1")
    verified = api.verify(
        {
            "otp_token": response.json()["otp_token"],
            "otp": code,
            "phone_number": "13612345678",
            "usage": "signup",
        },
        auth=api_client,
    )
    assert verified.json() == {"verified": True, "usage": "signup", "phone_number": PHONE}


def test_a_permanent_refusal_through_the_api_fails_the_token(
    example, settings, gateway, api, api_client
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{MODULE}.SMSBackend"}
    gateway_settings(settings, URL=gateway.url, API_KEY="key-123")
    gateway.status, gateway.body = 400, b'{"error": "invalid_number"}'

    response = api.send({"usage": "signup", "phone_number": "13612345678"}, auth=api_client)

    assert response.status_code == 200
    assert len(gateway.requests) == 1  # not retried
    token = OTPToken.objects.get()
    assert token.delivery_status == DeliveryStatus.FAILED
    verified = api.verify(
        {
            "otp_token": response.json()["otp_token"],
            "otp": "000000",
            "phone_number": "13612345678",
            "usage": "signup",
        },
        auth=api_client,
    )
    assert verified.json()["error"] == "invalid_otp_token"
    assert "could not be delivered" in verified.json()["error_description"]
