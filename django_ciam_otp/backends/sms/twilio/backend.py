"""``SMSBackend``: one code, one ``Messages.create`` call (Twilio Programmable Messaging)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import phonenumbers
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
    TransientDeliveryError,
)
from ...settings import read_settings
from .. import checks_support
from ..base import BaseSMSBackend
from . import checks, receipts, sdk
from .conf import DEFAULTS, SETTINGS_KEY
from .errors import (
    SHORT_CODE_COUNTRY_MISMATCH,
    UNCLEAR_OUTCOMES,
    classify_error,
    docs_url,
    network_code,
    scrub,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger("django_ciam_otp.backends.sms.twilio")

_VERDICT = {
    TransientDeliveryError: "retry",
    PermanentDeliveryError: "give up",
    NotDeliverableHere: "try the next backend",
    BackendMisconfigured: "stop this backend",
}


class SMSBackend(BaseSMSBackend):
    """Send codes as free-text SMS through Twilio's Messages API (``2010-04-01``).

    The text is the one the base class renders (the site's templates, the
    token's language). Returns :class:`~django_ciam_otp.backends.base.Accepted`
    with the message's ``sid`` (what status callbacks name), the segments
    Twilio counted (``num_segments``; a Messaging Service reports 0 until it
    picks a sender, and then it is left out) and the number's country, which is
    what Twilio prices by.

    A try whose outcome is unclear (a read timeout, a connection broken after
    the request left, a 5xx) is retried like any transient failure: the
    Messages API has no idempotency key, so such a retry can send the code a
    second time. It is the same code, so the person is at worst texted twice.
    ``VALIDITY_PERIOD`` (by default the code's validity) keeps Twilio from
    delivering a code that waited in its queue longer than the code lives.

    Settings: ``CIAM_OTP["TWILIO_SMS"]`` over :data:`.conf.DEFAULTS`; keyword
    arguments override them, lower-cased (``SMSBackend(from_number="+1415...")``).
    """

    settings_key = SETTINGS_KEY
    default_name = "twilio"
    receives_receipts = True

    def __init__(self, **kwargs: Any) -> None:
        self.config: dict[str, Any] = read_settings(self, kwargs, DEFAULTS)
        super().__init__(**kwargs)
        self._sdk = sdk.import_sdk()
        # Settings no message can be sent with fail here, once, not per message.
        sdk.credentials(self.config)
        sdk.check_timeout(self.config.get("TIMEOUT"))
        if bool(self.config.get("FROM_NUMBER")) == bool(self.config.get("MESSAGING_SERVICE_SID")):
            raise ImproperlyConfigured(
                "TWILIO_SMS needs exactly one of FROM_NUMBER and MESSAGING_SERVICE_SID"
            )

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        """``ciam_otp.E121``–``E127`` and ``W121``–``W123`` (:mod:`.checks`), while configured."""
        return [*super().check(**kwargs), *checks.run()]

    def worst_case_seconds(self) -> float | None:
        """One call, whose ``TIMEOUT`` counts once to connect and once to read."""
        return checks_support.worst_case_seconds(self.config.get("TIMEOUT"), 2)

    def describe(self) -> str:
        sender = self.config.get("MESSAGING_SERVICE_SID") or self.config.get("FROM_NUMBER")
        return f"Twilio Programmable Messaging (account {self.config.get('ACCOUNT_SID')}, {sender})"

    # --- hooks a subclass may override -----------------------------------------------

    def get_client(self) -> Any:
        """This process's ``twilio.rest.Client`` for these settings (see :mod:`.sdk`)."""
        return sdk.get_client(self.config, self._sdk)

    def validity_period(self, message: OTPMessage) -> int | None:
        """Seconds Twilio may keep the message queued (``None``: Twilio's default, 10 hours)."""
        setting = self.config.get("VALIDITY_PERIOD")
        if setting is True:
            return min(checks.MAX_VALIDITY_PERIOD, max(1, int(message.validity_seconds)))
        if isinstance(setting, bool) or not isinstance(setting, int):
            return None
        return setting

    def build_params(self, phone_number: str, text: str, message: OTPMessage) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for one message."""
        params: dict[str, Any] = {"to": phone_number, "body": text}
        if self.config.get("MESSAGING_SERVICE_SID"):
            params["messaging_service_sid"] = str(self.config["MESSAGING_SERVICE_SID"])
        else:
            params["from_"] = str(self.config["FROM_NUMBER"])
        if self.config.get("STATUS_CALLBACK"):
            params["status_callback"] = str(self.config["STATUS_CALLBACK"])
        validity = self.validity_period(message)
        if validity is not None:
            params["validity_period"] = validity
        return params

    # --- sending -----------------------------------------------------------------------

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> Accepted:
        """Send ``text``; return what Twilio accepted, or raise a DeliveryError."""
        params = self.build_params(phone_number, text, message)
        client = self.get_client()
        refusals = _refusal_classes(self._sdk["exceptions"])
        sdk.forget_retry_after()
        try:
            created = client.messages.create(**params)
        except refusals as exc:
            raise self._refused(message, exc) from None
        except Exception as exc:  # noqa: BLE001 - every other failure is classified
            code = network_code(exc)
            raise self._error(
                message, code, None, classify_error(code), type(exc).__name__
            ) from None

        sid = str(getattr(created, "sid", None) or "")
        if not sid:
            raise self._error(
                message, "NoSid", None, classify_error("NoSid"), "an answer without a sid"
            )
        logger.info(
            "Twilio SMS accepted for %s (usage %s, sid %s, status %s)",
            mask_recipient(phone_number),
            message.usage,
            sid,
            getattr(created, "status", None),
        )
        return Accepted(sid, fee=_segments(created), region=_region_of(phone_number))

    def _refused(self, message: OTPMessage, exc: Any) -> DeliveryError:
        """The DeliveryError for an answer Twilio refused the message with."""
        status = getattr(exc, "status", None)
        code = getattr(exc, "code", None)
        if code is None or code == status:  # no Twilio code in the body
            provider_code = f"HTTP{status}"
        else:
            provider_code = str(code)
        error_class = classify_error(code, status)
        if code in SHORT_CODE_COUNTRY_MISMATCH and checks.is_short_code(
            self.config.get("FROM_NUMBER")
        ):
            error_class = NotDeliverableHere  # a short code sends within its own country
        text = getattr(exc, "msg", None) or " - ".join(
            str(part) for part in (getattr(exc, "title", ""), getattr(exc, "detail", "")) if part
        )
        text = str(text).removeprefix("Unable to create record: ")
        return self._error(message, provider_code, status, error_class, text)

    def _error(
        self,
        message: OTPMessage,
        provider_code: str,
        status: int | None,
        error_class: type[DeliveryError],
        text: str,
    ) -> DeliveryError:
        """Log the failure (no code, masked number) and build its exception."""
        http = f" (HTTP {status})" if status else ""
        logger.warning(
            "Twilio SMS to %s failed (usage %s): %s%s -> %s%s",
            mask_recipient(message.recipient),
            message.usage,
            provider_code,
            http,
            _VERDICT.get(error_class, "retry"),
            f"; see {docs_url(provider_code)}" if provider_code.isdigit() else "",
        )
        reason = f"Twilio {provider_code}{http}: {scrub(text, message)}"
        if error_class is TransientDeliveryError:
            return TransientDeliveryError(
                reason,
                provider_code=provider_code,
                retry_after=sdk.last_retry_after(),
                # Twilio may have created the message: failover must not send it again.
                unclear=provider_code in UNCLEAR_OUTCOMES or (status or 0) >= 500,
            )
        return error_class(reason, provider_code=provider_code)

    # --- status callbacks ----------------------------------------------------------------

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        """Check the callback's ``X-Twilio-Signature``, then read its status (:mod:`.receipts`).

        The signed URL is ``STATUS_CALLBACK`` when set (the URL every message
        named), else the URL the request arrived at.
        """
        url = str(self.config.get("STATUS_CALLBACK") or request.build_absolute_uri())
        receipts.authenticate(request, self.config.get("AUTH_TOKEN"), url, self._sdk)
        return receipts.read(request)


def _refusal_classes(module: Any) -> tuple[type[BaseException], ...]:
    """The SDK's exceptions for an answer refusing the request.

    ``TwilioServiceException`` (RFC 9457 answers) is newer than some twilio 9 releases.
    """
    found = (
        getattr(module, name, None) for name in ("TwilioRestException", "TwilioServiceException")
    )
    return tuple(cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException))


def _segments(created: Any) -> int | None:
    """Segments Twilio will bill, when it already knows (a Messaging Service says 0 first)."""
    try:
        segments = int(getattr(created, "num_segments", None) or 0)
    except (TypeError, ValueError):
        return None
    return segments if segments > 0 else None


def _region_of(phone_number: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone_number)) or None
    except phonenumbers.NumberParseException:
        return None
