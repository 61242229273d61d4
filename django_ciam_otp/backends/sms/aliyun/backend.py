"""``SMSBackend``: one code, one ``SendSms`` call (Dysmsapi 2017-05-25)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

from ....crypto import mask_recipient
from ...base import (
    Accepted,
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptMalformed,
    TransientDeliveryError,
)
from ...receipts import require_shared_secret
from ...settings import read_settings
from .. import checks_support
from ..base import BaseSMSBackend
from ..sdk_support import check_credential_mode, scrub
from . import checks, resend, sdk
from .conf import DEFAULTS, SETTINGS_KEY
from .errors import (
    FLOW_CONTROL,
    UNCLEAR_OUTCOMES,
    classify_error,
    failure_of,
    retry_after,
)
from .receipts import ACKNOWLEDGEMENT, parse_reports
from .templates import (
    MAINLAND,
    api_number,
    pick,
    region_of,
    scope_settings,
    template_code,
    template_params,
)

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("django_ciam_otp.backends.sms.aliyun")


class SMSBackend(BaseSMSBackend):
    """Send codes with Alibaba Cloud SMS (``SendSms``, Dysmsapi 2017-05-25).

    Alibaba sends approved templates only, so this backend renders no text: it
    overrides :meth:`send` and fills the template's variables
    (``TEMPLATE_PARAMS``, by default ``${code}``; a verification-code
    template takes that one variable, a notification template may also
    announce ``minutes``, rounded down so the text never promises more time
    than the code has, or ``seconds``).

    Returns :class:`~django_ciam_otp.backends.base.Accepted` with Alibaba's
    ``BizId`` (what its delivery receipts name; SendSms says nothing of the
    fee). The SDK's own retries are off: the delivery task retries transient
    errors with backoff and keeps the bookkeeping. A try after one whose
    outcome is unclear first asks Alibaba whether the code already went out
    (:mod:`.resend`); minute-level flow control answered to such a retry also
    means it did, as Alibaba takes one code a minute per number and signature.

    Settings: ``CIAM_OTP["ALIYUN_SMS"]`` over :data:`.conf.DEFAULTS`; keyword
    arguments override them, lower-cased (``SMSBackend(sign_name=..., region=...)``).
    """

    settings_key = SETTINGS_KEY
    default_name = "aliyun"
    receives_receipts = True

    def __init__(self, **kwargs: Any) -> None:
        self.config: dict[str, Any] = read_settings(self, kwargs, DEFAULTS)
        super().__init__(**kwargs)
        self._sdk = sdk.import_sdk()
        # Settings no message can be sent with fail here, once, not per message.
        sdk.check_region(self.config.get("REGION"))
        self.endpoint = sdk.resolve_endpoint(self.config.get("ENDPOINT"))
        sdk.timeouts(self.config.get("TIMEOUT"))
        check_credential_mode(sdk.credential_mode(self.config), SETTINGS_KEY)

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        """``ciam_otp.E131``–``E139`` and ``W131``–``W135`` (:mod:`.checks`), while configured."""
        return [*super().check(**kwargs), *checks.run()]

    def worst_case_seconds(self) -> float | None:
        """``TIMEOUT`` per call; three after an unclear try (``CONFIRM_BEFORE_RESEND``)."""
        calls = 3 if self.config.get("CONFIRM_BEFORE_RESEND") else 1
        return checks_support.worst_case_seconds(self.config.get("TIMEOUT"), calls)

    def describe(self) -> str:
        where = self.endpoint.host if self.endpoint else "the SDK's endpoint"
        return f"Alibaba Cloud SMS ({where}, region {self.config.get('REGION')})"

    # --- hooks a subclass may override -----------------------------------------

    def get_client(self) -> Any:
        """This process's Dysmsapi ``Client`` for these settings (see :mod:`.sdk`)."""
        return sdk.get_client(self.config, self._sdk)

    def get_scope(self, message: OTPMessage) -> dict[str, Any]:
        """Signature, templates and variables for the message's number.

        Raises :class:`NotDeliverableHere` for a number outside the mainland
        that no ``INTERNATIONAL`` entry covers: another backend may reach it.
        """
        region = region_of(message.recipient)
        scope = scope_settings(self.config, region)
        if scope is None:
            raise NotDeliverableHere(
                f"Alibaba Cloud SMS: INTERNATIONAL has no entry for region {region or '?'} "
                "(nor a 'default')",
                provider_code="NoInternationalTemplate",
            )
        return scope

    def get_template_code(self, message: OTPMessage, scope: dict[str, Any]) -> str:
        """The approved template for the usage and language, else ``"default"``'s."""
        found = template_code(scope, message.usage, message.language)
        if found:
            return found
        region = region_of(message.recipient) or "?"
        where = f"no template for usage {message.usage!r} (language {message.language!r})"
        if region == MAINLAND:
            raise BackendMisconfigured(
                f"Alibaba Cloud SMS: TEMPLATE_CODES has {where} and no 'default'",
                provider_code="NoTemplate",
            )
        raise NotDeliverableHere(
            f"Alibaba Cloud SMS: INTERNATIONAL[\"{region}\"] has {where} and no 'default'",
            provider_code="NoInternationalTemplate",
        )

    def get_template_params(self, message: OTPMessage, scope: dict[str, Any]) -> dict[str, str]:
        """Values of the template's variables, as ``TEMPLATE_PARAMS`` names them (strings)."""
        params = template_params(scope)
        minutes = message.validity_seconds // 60  # never more than the code really has
        if "minutes" in params.values() and minutes < 1:
            raise NotDeliverableHere(  # another backend may announce seconds
                f"Alibaba Cloud SMS: a validity of {message.validity_seconds} s cannot be "
                'announced in whole minutes; use a template with "seconds"',
                provider_code="ValidityUnderAMinute",
            )
        values = {
            "code": message.code,
            "minutes": str(minutes),
            "seconds": str(message.validity_seconds),
        }
        return {name: values[kind] for name, kind in params.items()}

    def build_request(self, message: OTPMessage) -> Any:
        """The ``SendSmsRequest`` for ``message``."""
        try:
            number = api_number(message.recipient)
        except ValueError:
            raise PermanentDeliveryError(
                "Alibaba Cloud SMS: the recipient is not a phone number",
                provider_code="InvalidNumber",
            ) from None
        scope = self.get_scope(message)
        sign_name = pick(scope.get("SIGN_NAME"), message.language)
        if not sign_name:
            raise BackendMisconfigured(
                "Alibaba Cloud SMS: SIGN_NAME is not set; SendSms needs an approved signature",
                provider_code="NoSignName",
            )
        template = self.get_template_code(message, scope)
        params = self.get_template_params(message, scope)
        return self._sdk["models"].SendSmsRequest(
            phone_numbers=number,
            sign_name=str(sign_name),
            template_code=template,
            # Strings only: isv.INVALID_JSON_PARAM refuses {"code": 123456}.
            template_param=json.dumps(params, ensure_ascii=False, separators=(",", ":")),
            out_id=resend.out_id(message),
        )

    # --- sending ---------------------------------------------------------------------

    def send(self, message: OTPMessage) -> Accepted:
        """Send one code; return what Alibaba accepted, or raise a DeliveryError."""
        self._check_config()
        request = self.build_request(message)
        client = self._client(message)
        unconfirmed = resend.earlier_try_unconfirmed(message)
        if unconfirmed and self.config.get("CONFIRM_BEFORE_RESEND", True):
            found = self.find_accepted(message, client, request.phone_numbers)
            if found is not None:
                resend.settled(message)
                logger.info(
                    "Alibaba Cloud SMS for %s was accepted by an earlier try: not resent",
                    mask_recipient(message.recipient),
                )
                return found

        try:
            response = client.send_sms(request)
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            code, text, request_id, throttled = failure_of(exc)
            return self._refused(message, code, text, request_id, unconfirmed, throttled)

        body = getattr(response, "body", None)
        if body is None:
            return self._refused(message, "UnreadableAnswer", "no body", None, unconfirmed)
        code = str(body.code or "")
        if code != "OK":
            return self._refused(
                message, code or "UnreadableAnswer", body.message, body.request_id, unconfirmed
            )
        if not body.biz_id:
            return self._refused(message, "NoBizId", "'OK' without a BizId", body.request_id)
        resend.settled(message)
        logger.info(
            "Alibaba Cloud SMS accepted for %s (usage %s, BizId %s, request %s)",
            mask_recipient(message.recipient),
            message.usage,
            body.biz_id,
            body.request_id,
        )
        return Accepted(str(body.biz_id))

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        """Not supported: Alibaba sends approved templates only, never free text."""
        raise NotImplementedError("Alibaba Cloud SMS sends approved templates; use send()")

    def find_accepted(self, message: OTPMessage, client: Any, number: str) -> Accepted | None:
        """The message an earlier try got accepted, found by ``QuerySendDetails``.

        https://help.aliyun.com/document_detail/419277.html: the number's
        messages of a day (Beijing time), matched by this token's ``OutId``.
        Any failure of the query (a RAM policy without it, throttling) means
        "not found".
        """
        wanted = resend.out_id(message)
        if wanted is None:
            return None
        models = self._sdk["models"]
        for send_date in resend.query_dates(message):
            request = models.QuerySendDetailsRequest(
                phone_number=number, send_date=send_date, page_size=50, current_page=1
            )
            try:
                response = client.query_send_details(request)
                body = response.body
                code = str(body.code or "")
            except Exception as exc:  # noqa: BLE001 - not knowing is the answer
                code, text, request_id, _ = failure_of(exc)
                self._query_failed(message, code, text, request_id)
                return None
            if code != "OK":
                self._query_failed(message, code, body.message, body.request_id)
                return None
            found = getattr(body.sms_send_detail_dtos, "sms_send_detail_dto", None) or []
            for detail in found:
                if detail.out_id == wanted and str(detail.send_status) != resend.SEND_FAILED:
                    return Accepted(
                        f"aliyun-accepted-earlier out_id={wanted} request={body.request_id or '-'}"
                    )
        return None

    # --- receipts -----------------------------------------------------------------------

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        """SmsReport's batch push (:mod:`.receipts`), once ``?secret=`` proved it Alibaba's."""
        require_shared_secret(request, self.config.get("RECEIPT_SECRET"))
        if request.method != "POST":
            raise ReceiptMalformed("SmsReport pushes with POST")
        return parse_reports(request.body)

    def receipts_response(self, request: HttpRequest, receipts: list[Receipt]) -> HttpResponse:
        """``{"code": 0, "msg": "接收成功"}``: anything else and Alibaba pushes again."""
        from django.http import JsonResponse

        return JsonResponse(ACKNOWLEDGEMENT, json_dumps_params={"ensure_ascii": False})

    # --- internals -----------------------------------------------------------------------

    def _check_config(self) -> None:
        """Keys every message needs: without them the line stops (and a check says so)."""
        if sdk.credential_mode(self.config) != "static":
            return
        missing = [
            key for key in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET") if not self.config.get(key)
        ]
        if missing:
            raise BackendMisconfigured(
                f"Alibaba Cloud SMS is not configured: {', '.join(missing)} missing",
                provider_code="NoCredentials",
            )

    def _client(self, message: OTPMessage) -> Any:
        try:
            return self.get_client()
        except ImproperlyConfigured:
            raise
        except Exception as exc:  # noqa: BLE001 - a credential factory that failed
            raise self._error(message, "NoCredentials", type(exc).__name__, None) from None

    def _refused(
        self,
        message: OTPMessage,
        code: str,
        text: Any,
        request_id: str | None,
        unconfirmed: bool = False,
        throttled: Any = None,
    ) -> Accepted:
        """Raise the DeliveryError for a try that failed, unless it means an earlier one went out.

        Minute-level flow control after an unconfirmed try says a code reached
        the number with this signature within the minute: that try.
        """
        minute = classify_error(code, text) is TransientDeliveryError  # not hour or day
        if code == FLOW_CONTROL and unconfirmed and minute:
            resend.settled(message)
            logger.info(
                "Alibaba Cloud SMS for %s: the earlier try went out (%s answered the resend)",
                mask_recipient(message.recipient),
                code,
            )
            after = message.previous_error or "unknown"
            return Accepted(f"aliyun-accepted-earlier after={after} request={request_id or '-'}")
        raise self._error(message, code, text, request_id, throttled) from None

    def _error(
        self,
        message: OTPMessage,
        code: str,
        text: Any,
        request_id: str | None,
        throttled: Any = None,
    ) -> DeliveryError:
        """The DeliveryError for a failed try; notes or clears an unconfirmed try."""
        error_class = classify_error(code, text)
        detail = " ".join(scrub(str(text or ""), message, significant=True).split())
        where = f" (request {request_id})" if request_id else ""
        if code in UNCLEAR_OUTCOMES:
            resend.remember_unconfirmed(message)
        elif error_class is not TransientDeliveryError:
            resend.settled(message)
        logger.warning(
            "Alibaba Cloud SMS to %s failed (usage %s): %s%s -> %s",
            mask_recipient(message.recipient),
            message.usage,
            code,
            where,
            _VERDICT.get(error_class, "retry"),
        )
        reason = f"Alibaba Cloud SMS {code}{where}: {detail}"
        if error_class is TransientDeliveryError:
            return TransientDeliveryError(
                reason,
                provider_code=code,
                retry_after=retry_after(code, text, throttled),
                unclear=code in UNCLEAR_OUTCOMES,
                recipient_scoped=code == FLOW_CONTROL,  # this number's per-minute limit
            )
        return error_class(reason, provider_code=code)

    def _query_failed(self, message: OTPMessage, code: str, text: Any, request_id: Any) -> None:
        logger.warning(
            "Alibaba Cloud SMS status query for %s failed: %s (request %s): %s; sending again",
            mask_recipient(message.recipient),
            code,
            request_id,
            " ".join(scrub(str(text or ""), message, significant=True).split())[:160],
        )


_VERDICT = {
    TransientDeliveryError: "retry",
    PermanentDeliveryError: "give up",
    NotDeliverableHere: "try the next backend",
    BackendMisconfigured: "stop the line, try the next backend",
}
