"""System checks of the Twilio SMS backend, run through ``SMSBackend.check()``.

The core asks each configured backend class for its checks, so these run only
while this backend (or a subclass) is an SMS backend: :func:`run` is the hook's
body. :func:`check_twilio_settings` stays callable on its own and is silent
unless the backend is configured. Settings only; no database, no network.

Ids ``ciam_otp.E121``–``E127`` and ``ciam_otp.W121``–``W123`` (docs/sms/twilio.md).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from django.core import checks

from ...settings import settings_section
from .. import checks_support
from . import sdk
from .conf import DEFAULTS, SETTINGS_KEY

BACKEND_PATH = "django_ciam_otp.backends.sms.twilio.SMSBackend"
WHERE = f'CIAM_OTP["{SETTINGS_KEY}"]'
HINT = "See the Twilio settings in the docs (docs/sms/twilio.md) and the Twilio Console."

#: SIDs are two letters and 32 hex digits (the Console shows them so).
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
#: Senders Twilio accepts besides E.164 numbers: short codes, and alphanumeric
#: sender IDs (at most 11 letters, digits and spaces, not digits only).
SHORT_CODE = re.compile(r"^\d{3,8}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
#: Twilio keeps a message queued at most 10 hours (error 21624).
MAX_VALIDITY_PERIOD = 36000
STRING_KEYS = (
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "API_KEY_SID",
    "API_KEY_SECRET",
    "FROM_NUMBER",
    "MESSAGING_SERVICE_SID",
    "STATUS_CALLBACK",
    "REGION",
    "EDGE",
)


def backend_configured() -> bool:
    """Whether this backend (or a subclass) is one of the site's backends, told by its key."""
    return checks_support.backend_configured(SETTINGS_KEY)


def check_twilio_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report Twilio settings that would fail sends or receipts, when this backend is in use."""
    if not backend_configured():
        return []
    return run()


def run() -> list[checks.CheckMessage]:
    """Every check of this backend's settings, in id order of their kind."""
    section = settings_section(SETTINGS_KEY)
    if not isinstance(section, dict):
        return [checks.Error(f"{WHERE} must be a dict.", hint=HINT, id="ciam_otp.E127")]
    conf = checks_support.merged_section(SETTINGS_KEY, DEFAULTS)
    messages: list[checks.CheckMessage] = []
    try:
        sdk.import_sdk()
    except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured naming the pip extra
        messages.append(checks.Error(str(exc), id="ciam_otp.E121"))
    shape = _shape_problems(section, conf)
    messages.extend(
        checks.Error(f"{WHERE}: {problem}.", hint=HINT, id="ciam_otp.E127") for problem in shape
    )
    strings = {key: conf[key] if isinstance(conf[key], str) else None for key in STRING_KEYS}
    messages.extend(_credentials(strings))
    messages.extend(_sender(strings))
    messages.extend(_status_callback(strings.get("STATUS_CALLBACK")))
    messages.extend(_time_budget(conf.get("TIMEOUT")))
    return messages


def _shape_problems(section: dict[str, Any], conf: dict[str, Any]) -> list[str]:
    """E127: unknown keys and values of the wrong kind."""
    problems = checks_support.unknown_keys(section, DEFAULTS)
    for key in STRING_KEYS:
        if conf[key] is not None and not isinstance(conf[key], str):
            problems.append(f"{key} must be a string or None, not {type(conf[key]).__name__}")
    try:
        sdk.check_timeout(conf.get("TIMEOUT"))
    except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured with the reason
        problems.append("TIMEOUT " + str(exc).removeprefix('TWILIO_SMS["TIMEOUT"] '))
    validity = conf.get("VALIDITY_PERIOD")
    if not (
        validity is None
        or isinstance(validity, bool)
        or (isinstance(validity, int) and 1 <= validity <= MAX_VALIDITY_PERIOD)
    ):
        problems.append(
            f"VALIDITY_PERIOD must be True, False, None or whole seconds from 1 to "
            f"{MAX_VALIDITY_PERIOD}, not {validity!r}"
        )
    return problems


def _credentials(conf: dict[str, str | None]) -> list[checks.CheckMessage]:
    """E122 the account, E123 what the API calls authenticate with, W121 receipts."""
    messages: list[checks.CheckMessage] = []
    account_sid = conf["ACCOUNT_SID"]
    if not account_sid:
        messages.append(
            checks.Error(f'{WHERE}["ACCOUNT_SID"] is not set.', hint=HINT, id="ciam_otp.E122")
        )
    elif not ACCOUNT_SID.match(account_sid):
        messages.append(
            checks.Error(
                f'{WHERE}["ACCOUNT_SID"] is not an Account SID ("AC" and 32 hex digits).',
                hint=HINT,
                id="ciam_otp.E122",
            )
        )
    key_sid, key_secret = conf["API_KEY_SID"], conf["API_KEY_SECRET"]
    if bool(key_sid) != bool(key_secret):
        missing = "API_KEY_SECRET" if key_sid else "API_KEY_SID"
        messages.append(
            checks.Error(
                f'{WHERE}["{missing}"] is not set: an API key needs its SID and its secret.',
                hint=HINT,
                id="ciam_otp.E123",
            )
        )
    elif key_sid and not API_KEY_SID.match(key_sid):
        messages.append(
            checks.Error(
                f'{WHERE}["API_KEY_SID"] is not an API key SID ("SK" and 32 hex digits).',
                hint=HINT,
                id="ciam_otp.E123",
            )
        )
    elif not key_sid and not conf["AUTH_TOKEN"]:
        messages.append(
            checks.Error(
                f"{WHERE} has no credentials: set AUTH_TOKEN, or API_KEY_SID and API_KEY_SECRET.",
                hint=HINT,
                id="ciam_otp.E123",
            )
        )
    if key_sid and key_secret and not conf["AUTH_TOKEN"]:
        messages.append(
            checks.Warning(
                f'{WHERE}["AUTH_TOKEN"] is not set: messages go out with the API key, but '
                "Twilio signs status callbacks with the Auth Token, so every delivery receipt "
                "is refused (403).",
                hint="Set AUTH_TOKEN too (it is used only to check signatures), or expect "
                "no delivery receipts.",
                id="ciam_otp.W121",
            )
        )
    return messages


def _sender(conf: dict[str, str | None]) -> list[checks.CheckMessage]:
    """E124 exactly one sender, E125 a sender Twilio can accept."""
    from_number, service_sid = conf["FROM_NUMBER"], conf["MESSAGING_SERVICE_SID"]
    if bool(from_number) == bool(service_sid):
        state = "both are set" if from_number else "neither is set"
        return [
            checks.Error(
                f"{WHERE} needs exactly one of FROM_NUMBER and MESSAGING_SERVICE_SID; {state}.",
                hint="A Messaging Service picks a sender from its pool (and may hold several "
                "countries' senders); FROM_NUMBER sends from one number.",
                id="ciam_otp.E124",
            )
        ]
    if service_sid:
        if MESSAGING_SERVICE_SID.match(service_sid):
            return []
        return [
            checks.Error(
                f'{WHERE}["MESSAGING_SERVICE_SID"] is not a Messaging Service SID '
                '("MG" and 32 hex digits).',
                hint=HINT,
                id="ciam_otp.E125",
            )
        ]
    problem = sender_problem(str(from_number))
    if problem:
        return [
            checks.Error(
                f'{WHERE}["FROM_NUMBER"] = {from_number!r} is {problem}.',
                hint='Use the Twilio number in E.164 form ("+14155550100"), a short code '
                '("12345") or an alphanumeric sender ID ("Acme").',
                id="ciam_otp.E125",
            )
        ]
    return []


def sender_problem(value: str) -> str:
    """What is wrong with a ``FROM_NUMBER`` (``""``: nothing)."""
    if value.startswith("+"):
        try:
            number = phonenumbers.parse(value)
        except phonenumbers.NumberParseException:
            return "not a phone number"
        if not phonenumbers.is_valid_number(number):
            return "not a valid phone number"
        if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != value:
            return "not in E.164 form (no spaces or punctuation)"
        return ""
    if SHORT_CODE.match(value) or ALPHANUMERIC_SENDER.match(value):
        return ""
    return "neither an E.164 number, a short code nor an alphanumeric sender ID"


def is_short_code(value: Any) -> bool:
    return isinstance(value, str) and bool(SHORT_CODE.match(value))


def _status_callback(url: str | None) -> list[checks.CheckMessage]:
    """E126 a URL Twilio refuses (21609: every message would fail), W122 plain http."""
    if not url:
        return []
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or "_" in host:
        return [
            checks.Error(
                f'{WHERE}["STATUS_CALLBACK"] = {url!r} is not an absolute http(s) URL with a '
                "valid host name: Twilio refuses every message that names it (error 21609).",
                hint="Use the public URL of this site's receipts view, "
                "https://<your site>/otp/receipts/twilio/.",
                id="ciam_otp.E126",
            )
        ]
    if parts.scheme == "http" and not _is_loopback(host):
        return [
            checks.Warning(
                f'{WHERE}["STATUS_CALLBACK"] is a plain http URL: delivery receipts and their '
                "signatures cross the internet unencrypted, where they can be read and replayed.",
                hint="Serve /otp/receipts/twilio/ over https and give that URL.",
                id="ciam_otp.W122",
            )
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _time_budget(timeout: Any) -> list[checks.CheckMessage]:
    """W123: a slow answer must time out before Celery's soft time limit cuts the task off."""
    try:
        seconds = sdk.check_timeout(timeout)
    except Exception:  # noqa: BLE001 - E127 says so
        return []
    worst = 2 * seconds  # connecting, then waiting for the answer, each up to TIMEOUT
    return checks_support.time_budget(
        WHERE,
        timeout,
        worst=worst,
        calls=2,
        check_id="ciam_otp.W123",
        spent=f"one send can take {worst:g} s (connecting and waiting for the answer, "
        f"{timeout} s each)",
    )
