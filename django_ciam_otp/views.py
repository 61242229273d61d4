"""HTTP API: thin DRF views over ``flows``; every answer is JSON in the contract's shape."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import flows, idempotency
from .auth import BasicClientAuthentication
from .exceptions import InvalidClient, InvalidRequest, OTPError, RateLimited
from .models import OTPClient

logger = logging.getLogger(__name__)

ERROR_CONTENT_TYPE = "application/json;charset=UTF-8"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class IsOTPClient(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, OTPClient)


def error_response(error: OTPError, *, status: int | None = None) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, InvalidClient):
        headers["WWW-Authenticate"] = (
            f'Basic realm="{BasicClientAuthentication.www_authenticate_realm}"'
        )
    return Response(
        error.as_dict(),
        status=status or error.status,
        headers=headers,
        content_type=ERROR_CONTENT_TYPE,
    )


def _translate(exc: Exception) -> tuple[OTPError, int | None]:
    """Map DRF's own exceptions onto the contract's codes."""
    if isinstance(exc, OTPError):
        return exc, None
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return InvalidClient(), None
    if isinstance(exc, drf_exceptions.ParseError):
        return InvalidRequest("The request body is not valid JSON."), None
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return InvalidRequest("Send the body as Content-Type: application/json."), 415
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return InvalidRequest("Use POST."), 405
    if isinstance(exc, drf_exceptions.APIException):
        return InvalidRequest(str(exc.detail)), exc.status_code
    if isinstance(exc, RequestDataTooBig):
        return InvalidRequest("The request body is too large."), 413
    if isinstance(exc, RecursionError):  # json nesting deeper than Python's stack
        return InvalidRequest("The request body is nested too deeply."), None
    raise exc


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class OTPAPIView(APIView):
    """Base for the OTP endpoints: client Basic auth, JSON in, JSON out.

    ``non_atomic_requests``: with ``ATOMIC_REQUESTS`` the delivery task would be
    queued only after the view returned, too late to answer 503 when the broker
    is down.
    """

    authentication_classes = [BasicClientAuthentication]
    permission_classes = [IsOTPClient]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes: list[Any] = []
    # The OpenAPI description is attached by schema.py when /otp/schema is first asked
    # for: a web worker that never serves it never imports drf-spectacular.

    def handle_exception(self, exc: Exception) -> Response:
        try:
            error, status = _translate(exc)
        except Exception:
            logger.exception("unexpected error in %s", type(self).__name__)
            response = Response(
                {"error": "server_error", "error_description": "Unexpected error."},
                status=500,
                content_type=ERROR_CONTENT_TYPE,
            )
            response.exception = True
            return response
        response = error_response(error, status=status)
        response.exception = True
        return response

    @staticmethod
    def client(request: Request) -> OTPClient:
        """The authenticated API client (``IsOTPClient`` let nothing else through)."""
        # DRF's stubs type request.user as Django's users; here it is what
        # BasicClientAuthentication returned.
        client: object = request.user
        if not isinstance(client, OTPClient):  # pragma: no cover - IsOTPClient refused it
            raise InvalidClient()
        return client

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON object of the request, refused unless every string in it is valid Unicode.

        JSON may escape a lone surrogate (``"\\ud800"``), and Python decodes it
        into a ``str`` that UTF-8 cannot encode: it would fail later wherever the
        text is hashed, stored or logged. Refused here, once, for every field.
        """
        data = request.data
        if not isinstance(data, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        if not _all_text_encodable(data):
            raise InvalidRequest(
                "The request body holds a string with an unpaired surrogate escape "
                "(such as \\ud800), which is not Unicode text."
            )
        return data


def _all_text_encodable(data: Any) -> bool:
    """Whether every string in a parsed JSON value, keys included, encodes as UTF-8.

    A loop over a stack, not recursion: the parser accepts nesting as deep as
    Python's stack allows, and this must not be the one to overflow it.
    """
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


class SendOTPView(OTPAPIView):
    """``POST /otp/send``: issue a code and return its ``otp_token``."""

    def post(self, request: Request) -> Response:
        client = self.client(request)
        data = self.body(request)
        key = request.headers.get(idempotency.HEADER)
        claim = idempotency.IdempotentRequest(client.pk, key, data) if key is not None else None
        if claim is not None:
            replay = claim.begin()
            if replay is not None:
                return Response(replay.body, status=replay.status, headers=NO_STORE)
        try:
            result = flows.send_otp(
                client,
                usage=data.get("usage"),
                phone_number=data.get("phone_number"),
                email=data.get("email"),
                auth_source_id=data.get("auth_source_id"),
                request=request._request,
            )
        except BaseException:
            if claim is not None:
                claim.release()
            raise
        body = result.as_dict()
        if claim is not None:
            claim.complete(200, body)
        return Response(body, headers=NO_STORE, content_type="application/json")


class VerifyOTPView(OTPAPIView):
    """``POST /otp/verify``: check a code against its ``otp_token``."""

    def post(self, request: Request) -> Response:
        client = self.client(request)
        data = self.body(request)
        result = flows.verify_otp(
            client,
            # Absent is refused like empty (flows.shape): "must be a non-empty string".
            data.get("otp_token", ""),
            data.get("otp", ""),
            phone_number=data.get("phone_number"),
            email=data.get("email"),
            usage=data.get("usage"),
        )
        return Response(result.as_dict(), headers=NO_STORE, content_type="application/json")


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under ``/otp/`` answer in the contract's shape, not with an HTML page.

    Exempt from CSRF like the API views themselves (DRF exempts them): callers
    authenticate with client credentials, not cookies, and this answer changes
    nothing. Without it, a POST (PUT, PATCH, DELETE) to a mistyped endpoint got
    Django's HTML 403 "CSRF verification failed" instead of this 404.
    """
    return JsonResponse(
        {"error": "invalid_request", "error_description": "Unknown endpoint."},
        status=404,
        content_type=ERROR_CONTENT_TYPE,
    )
