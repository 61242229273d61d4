"""Recipients: parse and normalise phones (``phonenumbers``) and emails (``email-validator``).

Every written form of one recipient must become one value, because that value
keys the rate limits, the is-used checks and the token binding: ``+86 136-1234-5678``,
``8613612345678`` and full-width ``１３６１２３４５６７８`` are all ``+8613612345678``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import email_validator
import phonenumbers
from phonenumbers import PhoneNumberType

from .conf import otp_settings
from .exceptions import InvalidEmail, MalformedEmail, MalformedPhoneNumber

# Digits (any script phonenumbers folds, e.g. full-width), the usual
# separators, and one leading plus. Letters are refused outright:
# phonenumbers would otherwise read "vanity" letters as keypad digits.
_PHONE_CHARS = re.compile(r"^\s*\+?[\d\s\-().]+$")
_MAX_PHONE_LENGTH = 32
_MAX_EMAIL_LENGTH = 254
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_local_part(local: str) -> str:
    """An email local part in canonical form: NFC, ASCII A–Z to a–z, nothing else folded.

    ``str.lower()``/``casefold()`` would fold ``İ``, ``ſ`` or ``ﬁ``
    towards ASCII letters, making a look-alike address "equal" to another
    person's (see :mod:`django_ciam_otp.identity`).
    """
    return unicodedata.normalize("NFC", local).translate(_ASCII_UPPER)


@dataclass(frozen=True)
class Recipient:
    """A normalised recipient.

    ``key`` is the identity used for limits, hashes and look-ups; ``address``
    is what a message is delivered to (for email the local part keeps its case).
    """

    channel: str
    key: str
    address: str


def normalize_phone_number(value: str) -> Recipient:
    """Return the E.164 form of an accepted mobile number or raise ``MalformedPhoneNumber``."""
    text = unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else ""
    if not text or len(text) > _MAX_PHONE_LENGTH or not _PHONE_CHARS.match(text):
        raise _malformed_phone_number()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, otp_settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise _malformed_phone_number() from exc
    region = phonenumbers.region_code_for_number(number)
    if not phonenumbers.is_valid_number(number) or (
        phonenumbers.number_type(number) not in _MOBILE_TYPES
    ):
        raise _malformed_phone_number()
    if region not in set(otp_settings.PHONE_REGIONS):
        raise _malformed_phone_number(region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Recipient(channel="sms", key=e164, address=e164)


def _malformed_phone_number(region: str | None = None) -> MalformedPhoneNumber:
    """The refusal, naming the accepted regions (``PHONE_REGIONS``), so a developer sees why.

    A US number on a site left at the contract's default (mainland China only)
    is a valid mobile number of the wrong region: say so, and where to change it.
    """
    accepted = ", ".join(map(str, otp_settings.PHONE_REGIONS))
    if region:
        return MalformedPhoneNumber(
            f"Mobile numbers of {region} are not accepted; accepted regions: {accepted} "
            "(CIAM_OTP['PHONE_REGIONS'])."
        )
    return MalformedPhoneNumber(
        f"Not a valid mobile number of an accepted region ({accepted}); write it with its "
        "country code, e.g. +86 136 1234 5678."
    )


def normalize_email(value: str) -> Recipient:
    """Return the normalised address or raise ``MalformedEmail`` / ``InvalidEmail``."""
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_EMAIL_LENGTH:
        raise MalformedEmail()
    check_dns = bool(otp_settings.EMAIL_CHECK_DELIVERABILITY)
    info = _parse_email(value)
    domain = (info.ascii_domain or info.domain).lower()
    if _domain_denied(domain):
        raise InvalidEmail("This email domain is not accepted.")
    if check_dns:
        try:
            email_validator.validate_email(value.strip(), check_deliverability=True)
        except email_validator.EmailNotValidError as exc:
            raise InvalidEmail("This email domain cannot receive mail.") from exc
    key = f"{fold_local_part(info.local_part)}@{domain}"
    return Recipient(channel="email", key=key, address=f"{info.local_part}@{domain}")


def deliverable_email(address: str) -> str:
    """``address`` as a code must be sent to it: its own local part at its IDNA2008 ASCII domain.

    Never the Unicode domain: Django's SMTP backend would encode it with
    Python's IDNA 2003 codec, which maps ``ß`` to ``ss`` and drops joiners, so
    ``bob@straße.de`` would be mailed at ``strasse.de`` — another domain,
    registrable by anyone — while the canonical form (IDNA 2008) says
    ``xn--strae-oqa.de``.
    """
    info = _parse_email(address)
    return f"{info.local_part}@{(info.ascii_domain or info.domain).lower()}"


def _parse_email(value: str) -> email_validator.ValidatedEmail:
    local = value.strip().rpartition("@")[0]
    if not otp_settings.EMAIL_ALLOW_SMTPUTF8 and local and not local.isascii():
        raise MalformedEmail(
            "Only ASCII characters are accepted before the @ "
            "(CIAM_OTP['EMAIL_ALLOW_SMTPUTF8'] is off)."
        )
    try:
        return email_validator.validate_email(
            value.strip(),
            check_deliverability=False,
            allow_smtputf8=bool(otp_settings.EMAIL_ALLOW_SMTPUTF8),
        )
    except email_validator.EmailNotValidError as exc:
        raise MalformedEmail() from exc


def _domain_denied(domain: str) -> bool:
    for entry in otp_settings.EMAIL_DOMAIN_DENYLIST:
        denied = _ascii_domain(entry)
        if domain == denied or domain.endswith("." + denied):
            return True
    return False


@functools.lru_cache(maxsize=1024)
def _ascii_domain(domain: str) -> str:
    """A denylist entry in the form addresses are keyed by: IDNA 2008, lower-case.

    Python's own ``idna`` codec is IDNA 2003 (``straße`` → ``strasse``): an
    entry written in Unicode would deny another domain and let its own through.
    """
    domain = domain.strip().lower().lstrip("@")
    try:
        info = email_validator.validate_email(
            f"x@{domain}", check_deliverability=False, test_environment=True
        )
    except email_validator.EmailNotValidError:
        return domain
    return (info.ascii_domain or info.domain).lower()
