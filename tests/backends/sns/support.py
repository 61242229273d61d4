"""Helpers of the SNS backend's tests: settings, a recorder of publishes, a loopback server.

The backend's real botocore client is driven throughout: ``botocore.stub.Stubber``
answers in its place for most tests; :class:`Recorder` listens on the client's
own event hooks (``before-parameter-build``/``after-call``) to pair each
``MessageId`` with the parameters that produced it; :func:`serve` answers real
HTTP on loopback with the XML SNS documents (for what only a real request
shows: botocore's debug logs, a read timeout).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

PHONE = "+14255550123"
CODE = "802731"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key pair
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REQUEST_ID = "d74b8436-ae13-5ab4-a9ff-ce54dfea72a0"  # the Publish page's example
MESSAGE_ID = "567910cd-659e-55d4-8ccb-5aaf14679dc0"


def sns_conf(**overrides: Any) -> dict[str, Any]:
    """A complete SNS_SMS setting for the tests (static example keys, us-east-1)."""
    conf: dict[str, Any] = {
        "REGION": "us-east-1",
        "ACCESS_KEY_ID": ACCESS_KEY_ID,
        "SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "TIMEOUT": 3,
    }
    conf.update(overrides)
    return conf


def publish_answer(message_id: str | None = None) -> dict[str, Any]:
    """What ``client.publish`` returns, for ``Stubber.add_response``."""
    return {"MessageId": message_id or str(uuid.uuid4())}


class Recorder:
    """Pairs each published ``MessageId`` with the ``publish`` parameters that got it.

    Handlers on the client's own events (public botocore API), so it sees
    what the Stubber or SNS saw, whichever answered.
    """

    def __init__(self, client: Any) -> None:
        self.sent: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register("before-parameter-build.sns.Publish", self._params)
        client.meta.events.register("after-call.sns.Publish", self._answer)

    def _params(self, params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["recorded_params"] = dict(params)
        self.calls.append(dict(params))

    def _answer(self, parsed: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        if parsed.get("MessageId"):
            self.sent[parsed["MessageId"]] = context["recorded_params"]


# --- a loopback stand-in for sns.<region>.amazonaws.com -----------------------------------

PUBLISH_XML = """<PublishResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/">
    <PublishResult>
        <MessageId>{message_id}</MessageId>
    </PublishResult>
    <ResponseMetadata>
        <RequestId>{request_id}</RequestId>
    </ResponseMetadata>
</PublishResponse>"""

ERROR_XML = """<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
    <Error>
        <Type>Sender</Type>
        <Code>{code}</Code>
        <Message>{message}</Message>
    </Error>
    <RequestId>{request_id}</RequestId>
</ErrorResponse>"""


@dataclass
class FakeSNS:
    url: str
    #: ``"ok"``, ``"hang"`` (never answer), ``"garbage"`` (a 200 that is not XML), or
    #: ``(status, code, message)`` for an error.
    reply: Any = "ok"
    received: list[dict[str, list[str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        fake: FakeSNS = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake.received.append(parse_qs(body.decode()))
        if fake.reply == "hang":
            fake.release.wait(10)
            return
        if fake.reply == "garbage":
            status, text = 200, "<PublishResponse><PublishResult"
        elif fake.reply == "ok":
            status = 200
            text = PUBLISH_XML.format(message_id=MESSAGE_ID, request_id=REQUEST_ID)
        else:
            status, code, message = fake.reply
            text = ERROR_XML.format(code=code, message=message, request_id=REQUEST_ID)
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


def serve() -> Iterator[FakeSNS]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.fake = FakeSNS(url=f"http://127.0.0.1:{server.server_address[1]}")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.fake  # type: ignore[attr-defined]
    finally:
        server.fake.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(5)
