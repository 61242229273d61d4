"""What every delivery backend receives and may raise.

Backends are small template-method classes (as in django-anymail): the base
class renders the message text from templates and calls one provider hook.
A backend reports a failure by raising :class:`TransientDeliveryError` (the
next backend of the route is tried, then the task retries with backoff, or
after ``retry_after`` seconds when the provider said when),
:class:`PermanentDeliveryError` (the recipient cannot get it from anyone: the
token is marked failed and its quota given back, no failover),
:class:`NotDeliverableHere` (this backend cannot reach this recipient, another
may: the next backend is tried) or :class:`BackendMisconfigured` (this backend
stops: no message goes to it until the pause is over or an operator fixes it,
see :mod:`django_ciam_otp.breaker`; the next backend is tried).
``ImproperlyConfigured`` counts as :class:`BackendMisconfigured`; anything else
as transient.

``send()`` returns the provider's message id, or an :class:`Accepted` when the
provider says more (what it billed).

Each backend reads its own settings (:func:`~django_ciam_otp.backends.settings.backend_setting`,
keyword arguments first) and answers for its own system checks (:meth:`BaseBackend.check`),
as django-anymail's ESP backends do, so the core names no provider.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import checks

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class OTPMessage:
    """One code to deliver. ``recipient`` is an E.164 number or an email address."""

    channel: str
    recipient: str
    code: str
    usage: str
    validity_seconds: int
    language: str = "en"
    token_id: int | None = None
    #: How many times this code was handed to the backend before (0: the first try).
    attempt: int = 0
    #: ``provider_code`` of the previous try's failure, if it failed: a backend whose
    #: provider may have accepted a message it could not confirm (a read timeout)
    #: can look before sending twice.
    previous_error: str | None = None

    @property
    def validity_minutes(self) -> int:
        """Whole minutes, rounded down (at least 1), as people read them ("valid for 1 minute").

        Down, so a message never promises more time than the code has: a 90 s
        code is "valid for 1 minute". Codes of under a minute still read "1 minute".
        """
        return max(1, self.validity_seconds // 60)

    def template_context(self) -> dict[str, Any]:
        from ..models import Usage

        return {
            "code": self.code,
            "usage": self.usage,
            "usage_display": Usage(self.usage).label,
            "validity_seconds": self.validity_seconds,
            "validity_minutes": self.validity_minutes,
            "recipient": self.recipient,
        }

    def __repr__(self) -> str:  # never show the code in a traceback or log line
        return (
            f"OTPMessage(channel={self.channel!r}, usage={self.usage!r}, "
            f"token_id={self.token_id!r})"
        )


@dataclass(frozen=True)
class Accepted:
    """What a provider said when it took the message (``send()`` may return it)."""

    #: The provider's id of the message (its delivery receipts name it).
    message_id: str
    #: Billed units (e.g. SMS segments), when the provider says.
    fee: int | None = None
    #: The region the provider billed (ISO 3166), when it says.
    region: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A provider's report of what became of one message (a delivery receipt)."""

    #: The provider's id of the message, as ``send()`` returned it.
    message_id: str
    #: ``True``: the handset got it; ``False``: the carrier gave up (undelivered).
    delivered: bool
    #: The provider's own status or error code ("DELIVRD", "30003"), for the token log.
    status: str = ""
    #: When the provider says the outcome happened, if it says (aware datetime).
    reported_at: dt.datetime | None = None


class ReceiptRefused(Exception):  # noqa: N818 - a refusal, not an error of ours
    """A status callback that is not authentically the provider's: answered 403, never read."""


class ReceiptMalformed(Exception):  # noqa: N818
    """An authentic callback whose body this backend cannot read: answered 400."""


class DeliveryError(Exception):
    """Base class of delivery failures; ``reason`` is a short, code-free text for the token log."""

    def __init__(self, reason: str, *, provider_code: str | None = None) -> None:
        self.reason = reason[:200]
        self.provider_code = provider_code
        super().__init__(self.reason)


class TransientDeliveryError(DeliveryError):
    """Worth retrying: timeouts, throttling, provider 5xx.

    ``retry_after``: seconds before a retry can succeed, when the provider's
    answer says (a per-number window); the task waits at least that long.

    ``unclear``: the provider may have taken the message (a read timeout, a
    connection lost after the request left, a gateway 5xx). Failover then
    does not hand the code to the next backend, which could make it a second
    message: the retry goes to this backend again (which may look before
    sending, as Tencent's does), until its circuit opens.

    ``recipient_scoped``: a limit on this number, not trouble with the
    provider (Tencent's 30 seconds per number, Alibaba's per-minute flow
    control): it does not count towards the backend's circuit, and the retry
    goes to this backend again after ``retry_after``.
    """

    def __init__(
        self,
        reason: str,
        *,
        provider_code: str | None = None,
        retry_after: float | None = None,
        unclear: bool = False,
        recipient_scoped: bool = False,
    ) -> None:
        super().__init__(reason, provider_code=provider_code)
        self.retry_after = retry_after
        self.unclear = unclear
        self.recipient_scoped = recipient_scoped


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help this message: a bad number, a number that refuses messages."""


class NotDeliverableHere(PermanentDeliveryError):
    """This backend cannot reach this recipient, another may: a region its account is not
    enabled for, no sender for the country. The next backend of the route is tried; with
    none left, the delivery fails as for :class:`PermanentDeliveryError`. The backend is
    not stopped: other recipients still go through it."""


class BackendMisconfigured(PermanentDeliveryError):
    """No message can succeed until an operator acts: credentials, arrears, an IP allow-list,
    an unapproved template or signature, a clock far off. Stops the line (see ``breaker``)."""


class BaseBackend:
    """Common constructor, settings and checks hook of SMS and email backends.

    A subclass takes its options as keyword arguments and reads each with
    :func:`~django_ciam_otp.backends.settings.backend_setting`, which pops it;
    what is left reaches this constructor and stays in ``options``.
    """

    #: The ``CIAM_OTP`` key holding this backend's own settings dict (``"TENCENT_SMS"``),
    #: or ``None`` when it has none. ``manage.py check`` accepts the key (no
    #: ``ciam_otp.E002``) and ``backend_setting`` reads the backend's settings from it.
    settings_key: ClassVar[str | None] = None
    #: ``False`` for backends that only show or keep messages (console, locmem): with
    #: one as the SMS backend, ``check --deploy`` reports ``ciam_otp.W011``.
    delivers: ClassVar[bool] = True
    #: The name a backend gets in ``SMS_BACKENDS`` when the site gives it none
    #: ("tencent", "twilio"): what routes, the token log, metrics and the receipts
    #: URL (``/otp/receipts/<name>/``) call it. Empty: the module's last part.
    default_name: ClassVar[str] = ""
    #: Whether :meth:`parse_receipts` reads this provider's status callbacks.
    receives_receipts: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        #: This backend's name in the site's list (set by ``get_backend``).
        self.name: str = kwargs.pop("name", None) or self.configured_name()
        self.options = kwargs

    @classmethod
    def configured_name(cls) -> str:
        """The name of this backend when ``SMS_BACKENDS`` gives it none."""
        if cls.default_name:
            return cls.default_name
        module = cls.__module__.split(".")
        return module[-2] if module[-1] == "backend" and len(module) > 1 else module[-1]

    @classmethod
    def check(cls, **kwargs: Any) -> list[checks.CheckMessage]:
        """This backend's system checks, run by ``manage.py check`` while it is configured.

        Like Django's ``Model.check()``: the core calls it for each configured
        backend class. It must not read the database (see :meth:`check_database`).
        Subclasses extend the list from ``super().check(**kwargs)``.
        """
        return []

    @classmethod
    def check_database(cls, databases: list[str]) -> list[checks.CheckMessage]:
        """Checks that read the database (``databases``: the aliases to look at).

        Run only where Django runs its ``database``-tagged checks
        (``check --database default``, ``migrate``), never by a plain
        ``manage.py check``, which from Django 6 passes every alias to every check.
        """
        return []

    def send(self, message: OTPMessage) -> str | Accepted:
        """Deliver ``message``; return the provider's message id (or ``""``), or an ``Accepted``."""
        raise NotImplementedError

    def worst_case_seconds(self) -> float | None:
        """The longest one ``send()`` can take (its timeouts, times the calls it may make).

        Failover starts this backend only if that still fits in the delivery
        task's soft time limit; ``None``: unknown (a default is assumed).
        """
        return None

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        """Authenticate a status callback as the provider documents, then read its receipts.

        Raise :class:`ReceiptRefused` unless the request is provably the
        provider's (a valid signature, the shared secret): never trust the
        body. Raise :class:`ReceiptMalformed` for an authentic body that
        cannot be read. Only called when :attr:`receives_receipts` is true.
        """
        raise NotImplementedError

    def receipts_response(self, request: HttpRequest, receipts: list[Receipt]) -> HttpResponse:
        """What the provider expects back once its receipts were taken (200, empty body)."""
        from django.http import HttpResponse

        return HttpResponse(status=200)

    def describe(self) -> str:
        """Where messages go, for the log line of a backend's first failure (no secrets)."""
        return f"{type(self).__module__}.{type(self).__qualname__}"
