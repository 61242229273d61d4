"""A local stand-in for ``sms.tencentcloudapi.com``, for tests that run the real SDK.

It recomputes the TC3-HMAC-SHA256 signature from Tencent's documented algorithm
("Signature v3", https://cloud.tencent.com/document/api/382/52072; written out
here, independent of the SDK's own ``Sign``) with the test secret key, checks
the action and version headers and the JSON body, and answers the way the API
pages show: for ``SendSms`` (https://cloud.tencent.com/document/api/382/55981)
a ``SendStatusSet`` built from the page's example, a top-level
``Response.Error`` (error codes page, https://cloud.tencent.com/document/api/382/52075),
a per-number error inside a 200 answer, an HTTP 500, or no answer at all; for
``PullSmsSendStatusByPhoneNumber`` a ``PullSmsSendStatusSet`` built from its
page's example (https://www.tencentcloud.com/document/api/382/40518).

Tests set ``fake.reply`` (SendSms) and ``fake.pull_reply`` (status pulls) to a
function of the request, or to ``"hang"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_ID = "AKIDtestSecretId0000000000000000"
SECRET_KEY = "test-secret-key-0000000000000000"
SDK_APP_ID = "1400000000"
SIGN_NAME = "腾讯云测试"
PHONE = "+8613711112222"
CODE = "802731"
SERIAL = "5000:1045710669157053657849499619"  # the SendSms page's example SerialNo
REQUEST_ID = "a0aabda6-cf91-4f3e-a81f-9198114a2279"  # ... and RequestId
ERROR_REQUEST_ID = "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"  # the error page's example


# --- TC3-HMAC-SHA256, as Tencent Cloud API 3.0 "Signature v3" documents it -----------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str,
    *,
    method: str,
    uri: str,
    query: str,
    headers: dict[str, str],
    signed_headers: str,
    payload: bytes,
    timestamp: str,
    date: str,
    service: str,
) -> str:
    """Signature over the canonical request, as the server computes it."""
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in names)
    canonical_request = "\n".join(
        [
            method,
            uri,
            query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            timestamp,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)

# --- the answers ------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the fake saw it, after it passed the signature check."""

    action: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.time)


Reply = tuple[int, Any]  # (HTTP status, JSON-able dict or raw bytes)


def ok(request: Received, serial: str = SERIAL, fee: int = 1, iso: str = "CN") -> Reply:
    """The SendSms page's example answer, for the number and context asked."""
    return 200, {
        "Response": {
            "SendStatusSet": [
                {
                    "SerialNo": serial,
                    "PhoneNumber": request.body["PhoneNumberSet"][0],
                    "Fee": fee,
                    "SessionContext": request.body.get("SessionContext", ""),
                    "Code": "Ok",
                    "Message": "send success",
                    "IsoCode": iso,
                }
            ],
            "RequestId": REQUEST_ID,
        }
    }


def status_error(code: str, message: str) -> Callable[[Received], Reply]:
    """Per-number failure: HTTP 200, no Response.Error, SendStatusSet[0].Code != Ok."""

    def reply(request: Received) -> Reply:
        status, body = ok(request, serial="", fee=0)
        body["Response"]["SendStatusSet"][0].update(Code=code, Message=message)
        return status, body

    return reply


def api_error(code: str, message: str) -> Callable[[Received | None], Reply]:
    """Whole-request failure: HTTP 200 with Response.Error (the error page's example shape)."""
    return lambda request: (
        200,
        {
            "Response": {
                "Error": {"Code": code, "Message": message},
                "RequestId": ERROR_REQUEST_ID,
            }
        },
    )


def pulled(*statuses: dict[str, Any]) -> Callable[[Received], Reply]:
    """A PullSmsSendStatusByPhoneNumber answer holding ``statuses``."""
    return lambda request: (
        200,
        {"Response": {"PullSmsSendStatusSet": list(statuses), "RequestId": REQUEST_ID}},
    )


def pull_status(phone: str = PHONE, session_context: str = "", serial: str = SERIAL) -> dict:
    """One status, as the pull page's example shows it."""
    return {
        "UserReceiveTime": int(time.time()),
        "CountryCode": "86",
        "SubscriberNumber": phone.removeprefix("+86"),
        "PhoneNumber": phone,
        "SerialNo": serial,
        "ReportStatus": "SUCCESS",
        "Description": "DELIVRD",
        "SessionContext": session_context,
    }


def sequence(*replies: Callable[[Received], Reply] | str) -> Callable[[Received], Reply]:
    """Answer with each reply in turn (the last one repeats)."""
    queue = list(replies)

    def reply(request: Received) -> Reply:
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        if current == "hang":
            raise _Hang
        assert callable(current)
        return current(request)

    return reply


class _Hang(Exception):
    """Raised by a reply to answer nothing."""


# --- the server -------------------------------------------------------------------------


@dataclass
class FakeTencent:
    url: str = ""
    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    reply: Callable[[Received], Reply] | str = field(default=lambda r: ok(r))
    pull_reply: Callable[[Received], Reply] | str = field(default_factory=lambda: pulled())
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    connections: set[tuple[str, int]] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def sends(self) -> list[Received]:
        return [r for r in self.received if r.action == "SendSms"]

    @property
    def pulls(self) -> list[Received]:
        return [r for r in self.received if r.action == "PullSmsSendStatusByPhoneNumber"]


class Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"  # keep-alive, as Tencent's gateway

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        # Exactly this value: the SDK only looks for Response.Error when it sees it.
        self.send_header("Content-Type", "application/json" if status == 200 else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reject(self, code: str, why: str) -> None:
        fake: FakeTencent = self.server.fake
        fake.rejected.append(f"{code}: {why}")
        self._answer(*api_error(code, why)(None))

    def do_POST(self) -> None:  # noqa: C901 - one check after another, as the server does
        fake: FakeTencent = self.server.fake
        fake.connections.add(self.client_address)
        payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}

        match = AUTH_RE.match(headers.get("authorization", ""))
        if not match:
            return self._reject("AuthFailure.InvalidAuthorization", "bad Authorization header")
        timestamp = headers.get("x-tc-timestamp", "")
        if abs(time.time() - int(timestamp or 0)) > 300:
            return self._reject("AuthFailure.SignatureExpire", "timestamp too far off")
        if match["date"] != datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d"):
            return self._reject("AuthFailure.SignatureFailure", "credential date != timestamp")
        if match["id"] != fake.secret_id:
            return self._reject("AuthFailure.SecretIdNotFound", "unknown SecretId")
        if match["service"] != "sms" or "host" not in match["signed"].split(";"):
            return self._reject("AuthFailure.SignatureFailure", "bad scope or signed headers")
        expected = tc3_signature(
            fake.secret_key,
            method=self.command,
            uri=self.path,
            query="",
            headers=headers,
            signed_headers=match["signed"],
            payload=payload,
            timestamp=timestamp,
            date=match["date"],
            service=match["service"],
        )
        if not hmac.compare_digest(expected, match["sig"]):
            return self._reject("AuthFailure.SignatureFailure", "signature mismatch")
        action = headers.get("x-tc-action", "")
        if action not in ("SendSms", "PullSmsSendStatusByPhoneNumber"):
            return self._reject("InvalidAction", action or "no action")
        if headers.get("x-tc-version") != "2021-01-11":
            return self._reject("NoSuchVersion", headers.get("x-tc-version", "no version"))
        if not headers.get("x-tc-region"):  # Region is required for 2021-01-11
            return self._reject("MissingParameter", "missing a required parameter `Region`")
        if headers.get("content-type") != "application/json":
            return self._reject("InvalidParameter", "content type")

        received = Received(action=action, headers=headers, body=json.loads(payload))
        fake.received.append(received)
        reply = fake.reply if action == "SendSms" else fake.pull_reply
        try:
            if reply == "hang":
                raise _Hang
            assert callable(reply)
            return self._answer(*reply(received))
        except _Hang:  # answer nothing until the test is over
            fake.release.wait(10)
            self.close_connection = True
            return None


def serve() -> Iterator[FakeTencent]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.fake = FakeTencent(url=f"http://127.0.0.1:{server.server_address[1]}")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.fake  # type: ignore[attr-defined]
    finally:
        server.fake.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(5)


def tencent_conf(**overrides: Any) -> dict[str, Any]:
    """A complete TENCENT_SMS setting for the tests (static keys, mainland templates)."""
    conf: dict[str, Any] = {
        "SECRET_ID": SECRET_ID,
        "SECRET_KEY": SECRET_KEY,
        "REGION": "ap-guangzhou",
        "SDK_APP_ID": SDK_APP_ID,
        "SIGN_NAME": SIGN_NAME,
        "TEMPLATE_IDS": {"login": "1001", "default": "1999"},
        "ENDPOINT": None,
        "TIMEOUT": 3,
    }
    conf.update(overrides)
    return conf
