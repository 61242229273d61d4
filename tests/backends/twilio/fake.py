"""Twilio's Messages API, mocked at the HTTP layer with ``responses`` (the SDK uses requests).

The real SDK builds, signs and sends each request; only the socket is replaced.
Answers follow Twilio's documented shapes: a created Message
(https://www.twilio.com/docs/messaging/api/message-resource) and the REST error
body ``{"code", "message", "more_info", "status"}``
(https://www.twilio.com/docs/usage/twilios-response).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import responses

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-not-secret-0123"
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "test-api-key-secret-not-secret"
FROM_NUMBER = "+15005550006"
SERVICE_SID = "MG" + "0123456789abcdef" * 2
CALLBACK = "https://otp.example.com/otp/receipts/twilio/"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
#: Any Twilio host (regions and edges change it) and any account.
ANY_MESSAGES_URL = re.compile(
    r"^https://api\.[a-z0-9.]*twilio\.com/2010-04-01/Accounts/[^/]+/Messages\.json$"
)
PHONE = "+14155552671"
CODE = "482915"

Reply = Callable[["Sent"], tuple[int, dict[str, str], str]]


@dataclass
class Sent:
    """One request the SDK made, as Twilio received it."""

    url: str
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def auth(self) -> tuple[str, str]:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        assert scheme == "Basic"
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password


@dataclass
class FakeTwilio:
    """Answers each request with ``reply`` (by default: the message is queued)."""

    requests: list[Sent] = field(default_factory=list)
    by_sid: dict[str, Sent] = field(default_factory=dict)
    reply: Reply | None = None
    _sids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = {key: values[0] for key, values in parse_qs(request.body or "").items()}
        sent = Sent(str(request.url), dict(request.headers), form)
        self.requests.append(sent)
        return (self.reply or self.created)(sent)

    def created(self, sent: Sent, **fields: Any) -> tuple[int, dict[str, str], str]:
        sid = f"SM{next(self._sids):032x}"
        self.by_sid[sid] = sent
        body = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": sent.form.get("To"),
            "from": sent.form.get("From"),
            "messaging_service_sid": sent.form.get("MessagingServiceSid"),
            "body": sent.form.get("Body"),
            "status": "accepted" if "MessagingServiceSid" in sent.form else "queued",
            # A Messaging Service has picked no sender yet, so it counts 0 segments.
            "num_segments": "0" if "MessagingServiceSid" in sent.form else "1",
            "direction": "outbound-api",
            "error_code": None,
            "price": None,
            **fields,
        }
        return 201, {"Content-Type": "application/json"}, json.dumps(body)

    @property
    def last(self) -> Sent:
        return self.requests[-1]


def error(
    status: int, code: int | None, message: str = "refused", headers: dict[str, str] | None = None
) -> Reply:
    """Twilio's REST error answer (``code`` None: a body without one)."""
    body: dict[str, Any] = {"message": message, "status": status}
    if code is not None:
        body.update(code=code, more_info=f"https://www.twilio.com/docs/errors/{code}")
    return lambda sent: (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body),
    )


def raw(status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
    """An answer that is not Twilio's JSON (a gateway's error page)."""
    return lambda sent: (status, headers or {"Content-Type": "text/html"}, text)


def serve() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, ANY_MESSAGES_URL, callback=fake)
        yield fake


def twilio_conf(**overrides: Any) -> dict[str, Any]:
    """A complete, working ``CIAM_OTP["TWILIO_SMS"]`` (sending from one number)."""
    conf: dict[str, Any] = {
        "ACCOUNT_SID": ACCOUNT_SID,
        "AUTH_TOKEN": AUTH_TOKEN,
        "FROM_NUMBER": FROM_NUMBER,
        "STATUS_CALLBACK": CALLBACK,
    }
    conf.update(overrides)
    return conf
