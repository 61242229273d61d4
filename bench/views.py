"""The floor of the stack: what ``POST /otp/send`` costs before its own rules run.

``BaselineView`` is ``SendOTPView`` without the send: the same DRF view class
(``OTPAPIView``: ``BasicClientAuthentication`` with its client look-up and
keyed-hash check, the JSON parser and renderer, the error handling), the same
middleware, the same body. It parses the body and answers a constant.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from django_ciam_otp.views import NO_STORE, OTPAPIView

CONSTANT = {"otp_token": "baseline", "retry_after": 0}


class BaselineView(OTPAPIView):
    schema = None  # not part of the API's OpenAPI document

    def post(self, request: Request) -> Response:
        data = self.body(request)  # parse and shape-check the JSON body, as the send does
        data.get("phone_number")
        return Response(CONSTANT, headers=NO_STORE, content_type="application/json")
