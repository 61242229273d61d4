"""The floors of the stack: what ``POST /otp/send`` costs before its own rules run.

``BaselineView`` is ``SendOTPView`` without the send: the same DRF view class
(``OTPAPIView``: ``BasicClientAuthentication`` with its client look-up and
keyed-hash check, the JSON parser and renderer, the error handling), the same
middleware, the same body. It parses the body and answers a constant.

``InsertFloorView`` is the baseline plus the one thing no send can skip:
storing its token durably, one ``INSERT`` of a token row (the ORM's
``save()``, as the send does) committed on its own. It is what any endpoint
that keeps a code costs on this stack before it does anything else, and a
bound for the send: no send can be cheaper.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from django_ciam_otp.models import DeliveryStatus, OTPToken
from django_ciam_otp.views import NO_STORE, OTPAPIView

CONSTANT = {"otp_token": "baseline", "retry_after": 0}


class BaselineView(OTPAPIView):
    schema = None  # not part of the API's OpenAPI document

    def post(self, request: Request) -> Response:
        data = self.body(request)  # parse and shape-check the JSON body, as the send does
        data.get("phone_number")
        return Response(CONSTANT, headers=NO_STORE, content_type="application/json")


class InsertFloorView(OTPAPIView):
    schema = None

    def post(self, request: Request) -> Response:
        data = self.body(request)
        phone = str(data.get("phone_number", ""))
        now = timezone.now()
        OTPToken(
            token_hash=secrets.token_hex(32),
            client=request.user,
            channel="sms",
            usage="login",
            recipient_hash=secrets.token_hex(32),
            recipient_masked=phone[:3] + "****",
            code_hash=secrets.token_hex(32),
            code_length=6,
            code_expires_at=now + dt.timedelta(seconds=300),
            expires_at=now + dt.timedelta(seconds=300),
            delivery_status=DeliveryStatus.SUPPRESSED,  # nothing for a worker to do
            created_at=now,
        ).save(force_insert=True)
        return Response(CONSTANT, headers=NO_STORE, content_type="application/json")
