"""A stand-in for ``dysmsapi.aliyuncs.com`` at the HTTP layer, for tests that run the real SDK.

The SDK sends with ``requests`` (``darabonba.core.DaraCore.do_action``), so the
``responses`` library answers in place of Alibaba: no SDK class is mocked.
Each request must carry a valid ACS3-HMAC-SHA256 signature, recomputed here
from Alibaba's documented algorithm ("V3 request structure and signature",
https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature;
written out independently of the SDK's ``Utils.get_authorization``) with the
test secret; a fresh nonce; a date within 15 minutes; the 2017-05-25 version.

Answers follow the API pages: SendSms
(https://help.aliyun.com/document_detail/419273.html) ``{"Code": "OK",
"BizId": ...}`` or a business error with HTTP 200
(https://help.aliyun.com/document_detail/101346.html); the gateway's errors
with HTTP 4xx/5xx; QuerySendDetails
(https://help.aliyun.com/document_detail/419277.html) its ``SmsSendDetailDTOs``.

The fake also plays the handset: :meth:`FakeAliyun.text` renders the
"approved template" a SendSms named with the variables it carried.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import requests
import responses

ACCESS_KEY_ID = "LTAI5tTestAccessKey0000"
ACCESS_KEY_SECRET = "test-access-key-secret-00000000"
HOST = "dysmsapi.aliyuncs.com"
SIGN_NAME = "示例科技"
PHONE = "+8613711112222"
NATIONAL = "13711112222"
CODE = "802731"
REQUEST_ID = "F655A8D5-B967-440B-8683-DAD6FF8DE990"  # the SendSms page's example
BIZ_ID = "900619746936498440^0"  # ... and its BizId

#: The "approved templates" of the fake account (what the handset shows).
LABELS = {
    "login": ("Log in", "登录"),
    "signup": ("Sign up", "注册"),
    "update_userinfo": ("Update user information", "更新用户信息"),
    "reset_password": ("Reset password", "重置密码"),
}
TEMPLATES = {
    "SMS_100001": "您的验证码为${code}，请勿泄露。",  # a verification-code template
    **{
        f"SMS_EN_{usage.upper()}": f"Your verification code for {en} is ${{code}}. "
        "It is valid for ${minutes} minutes. Do not share it."
        for usage, (en, _) in LABELS.items()
    },
    **{
        f"SMS_ZH_{usage.upper()}": (
            f"您的{zh}验证码为 ${{code}}，${{minutes}} 分钟内有效，请勿泄露。"
        )
        for usage, (_, zh) in LABELS.items()
    },
    "SMS_INTL_1": "Your code is ${code}.",
}


# --- ACS3-HMAC-SHA256, as Alibaba Cloud's V3 signature documents it ------------------------


def _encode(text: str) -> str:
    """RFC 3986 percent-encoding: space %20, * %2A, ~ left alone."""
    return quote(text, safe="~")


def acs3_signature(
    secret: str,
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    signed_headers: str,
    payload_hash: str,
) -> str:
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query))
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
    canonical_request = "\n".join(
        [method, path or "/", canonical_query, canonical_headers, signed_headers, payload_hash]
    )
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(
    r"^ACS3-HMAC-SHA256 Credential=(?P<id>[^,]+),SignedHeaders=(?P<signed>[a-z0-9;-]+),"
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)
REQUIRED_SIGNED = {
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
}

# --- the answers ------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the fake saw it, after it passed the signature check."""

    action: str
    headers: dict[str, str]
    params: dict[str, str]
    at: float = field(default_factory=time.time)


Reply = tuple[Any, ...]  # (HTTP status, JSON-able body or raw bytes[, headers])
_biz_ids = itertools.count(900619746936498441)


def ok(request: Received, biz_id: str | None = None) -> Reply:
    """The SendSms page's example answer (a new BizId each time)."""
    return 200, {
        "Code": "OK",
        "Message": "OK",
        "BizId": biz_id if biz_id is not None else f"{next(_biz_ids)}^0",
        "RequestId": REQUEST_ID,
    }


def refused(code: str, message: str) -> Callable[[Received], Reply]:
    """A Dysmsapi refusal: HTTP 200, ``Code`` other than OK."""
    return lambda request: (200, {"Code": code, "Message": message, "RequestId": REQUEST_ID})


def gateway_error(status: int, code: str, message: str) -> Callable[[Received | None], Reply]:
    """The OpenAPI gateway's refusal: HTTP 4xx/5xx with a JSON error."""
    return lambda request: (
        status,
        {
            "RequestId": REQUEST_ID,
            "HostId": HOST,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Dysmsapi",
        },
    )


def detail(out_id: str, send_status: int = 3, phone: str = NATIONAL) -> dict[str, Any]:
    """One SmsSendDetailDTO, as the QuerySendDetails page's example shows it."""
    return {
        "PhoneNum": phone,
        "SendStatus": send_status,
        "ErrCode": "DELIVERED" if send_status == 3 else "",
        "TemplateCode": "SMS_100001",
        "Content": "【示例科技】您的验证码为******，请勿泄露。",
        "SendDate": "2026-05-04 18:00:00",
        "ReceiveDate": "2026-05-04 18:00:03",
        "OutId": out_id,
    }


def queried(*details: dict[str, Any]) -> Callable[[Received], Reply]:
    return lambda request: (
        200,
        {
            "Code": "OK",
            "Message": "OK",
            "RequestId": REQUEST_ID,
            "TotalCount": len(details),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": list(details)},
        },
    )


def sequence(*replies: Callable[[Received], Reply]) -> Callable[[Received], Reply]:
    """Answer with each reply in turn (the last one repeats)."""
    queue = list(replies)
    return lambda request: (queue.pop(0) if len(queue) > 1 else queue[0])(request)


def hang(request: Received) -> Reply:
    """No answer in time: what requests raises when the read timeout passes."""
    raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=2.0)")


def drop(request: Received) -> Reply:
    """The connection broke after the request left."""
    raise requests.exceptions.ConnectionError("Connection aborted.")


# --- the fake ------------------------------------------------------------------------------


@dataclass
class FakeAliyun:
    secret_id: str = ACCESS_KEY_ID
    secret: str = ACCESS_KEY_SECRET
    reply: Callable[[Received], Reply] = field(default=ok)
    query_reply: Callable[[Received], Reply] = field(default_factory=queried)
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    bodies: dict[str, Received] = field(default_factory=dict)  # BizId -> the SendSms

    @property
    def sends(self) -> list[Received]:
        return [r for r in self.received if r.action == "SendSms"]

    @property
    def queries(self) -> list[Received]:
        return [r for r in self.received if r.action == "QuerySendDetails"]

    def text(self, biz_id: str) -> tuple[str, str]:
        """``(E.164 number, text)`` of the message Alibaba accepted as ``biz_id``."""
        request = self.bodies[biz_id]
        number = request.params["PhoneNumbers"]
        phone = "+86" + number if len(number) == 11 and number.startswith("1") else "+" + number
        text = TEMPLATES[request.params["TemplateCode"]]
        for name, value in json.loads(request.params.get("TemplateParam", "{}")).items():
            text = text.replace("${" + name + "}", value)
        return phone, text

    def _reject(self, reply: Reply, why: str) -> tuple[int, dict[str, str], bytes]:
        self.rejected.append(f"{reply[1]['Code']}: {why}")
        return self._answer(reply)

    @staticmethod
    def _answer(reply: Reply) -> tuple[int, dict[str, str], bytes]:
        status, body, *extra = reply  # an optional third item: more response headers
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        kind = "application/json;charset=utf-8" if not isinstance(body, bytes) else "text/html"
        return status, {"Content-Type": kind, **(extra[0] if extra else {})}, data

    def __call__(self, prepared: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        headers = {k.lower(): v for k, v in prepared.headers.items()}
        url = urlsplit(prepared.url or "")
        body = prepared.body or b""
        payload = body.encode() if isinstance(body, str) else bytes(body)
        match = AUTH_RE.match(headers.get("authorization", ""))
        if not match:
            return self._reject(gateway_error(400, "IncompleteSignature", "")(None), "no auth")
        if match["id"] != self.secret_id:
            reply = gateway_error(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
            return self._reject(reply(None), "unknown key")
        signed = set(match["signed"].split(";"))
        if not REQUIRED_SIGNED <= signed or not signed <= set(headers):
            return self._reject(gateway_error(400, "IncompleteSignature", "")(None), "headers")
        if headers["x-acs-content-sha256"] != hashlib.sha256(payload).hexdigest():
            return self._reject(gateway_error(400, "IncompleteSignature", "")(None), "payload")
        query = parse_qsl(url.query, keep_blank_values=True)
        expected = acs3_signature(
            self.secret,
            method=prepared.method or "",
            path=url.path,
            query=query,
            headers=headers,
            signed_headers=match["signed"],
            payload_hash=headers["x-acs-content-sha256"],
        )
        if not hmac.compare_digest(expected, match["sig"]):
            reply = gateway_error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            )
            return self._reject(reply(None), "signature mismatch")
        when = datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs(time.time() - when.timestamp()) > 900:
            reply = gateway_error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
            return self._reject(reply(None), "date")
        nonce = headers["x-acs-signature-nonce"]
        if nonce in self.nonces:
            reply = gateway_error(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
            return self._reject(reply(None), "nonce")
        self.nonces.add(nonce)
        if headers["x-acs-version"] != "2017-05-25":
            return self._reject(gateway_error(400, "InvalidVersion", "")(None), "version")
        action = headers["x-acs-action"]
        if action not in ("SendSms", "QuerySendDetails"):
            return self._reject(gateway_error(404, "InvalidAction.NotFound", "")(None), action)
        received = Received(action=action, headers=headers, params=dict(query))
        self.received.append(received)
        reply = (self.reply if action == "SendSms" else self.query_reply)(received)
        if action == "SendSms" and reply[0] == 200 and isinstance(reply[1], dict):
            if reply[1].get("Code") == "OK" and reply[1].get("BizId"):
                self.bodies[reply[1]["BizId"]] = received
        return self._answer(reply)


def serve() -> Iterator[FakeAliyun]:
    """The fake answering every request to Alibaba's SMS host while the test runs."""
    fake = FakeAliyun()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(
            responses.POST, re.compile(rf"https?://{re.escape(HOST)}/.*"), callback=fake
        )
        yield fake


def aliyun_conf(**overrides: Any) -> dict[str, Any]:
    """A complete ALIYUN_SMS setting for the tests (static keys, one mainland template)."""
    conf: dict[str, Any] = {
        "ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "SIGN_NAME": SIGN_NAME,
        "TEMPLATE_CODES": {"default": "SMS_100001"},
        "RECEIPT_SECRET": "receipt-secret-0123456789abcdef",
        "TIMEOUT": 3,
    }
    conf.update(overrides)
    return conf
