"""System checks of the AWS SNS SMS backend, run through ``SMSBackend.check()``.

The core asks each configured backend class for its checks, so these run only
while this backend (or a subclass) is one of the site's SMS backends:
:func:`run` is the hook's body. :func:`value_checks` judges a settings dict
alone (no SDK, no environment), and the backend's constructor refuses the
errors it finds, so a setting the check reports can never reach SNS either.

Ids ``ciam_otp.E141``–``E146`` and ``ciam_otp.W141``–``W144`` (docs/sms/sns.md).
"""

from __future__ import annotations

import re
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .. import checks_support
from . import sdk
from .attributes import (
    max_price,
    origination_number_problem,
    region_key_problem,
    scoped_values,
    sender_id_problem,
    sms_type_problem,
)
from .conf import DEFAULTS, SETTINGS_KEY

BACKEND_PATH = "django_ciam_otp.backends.sms.sns.SMSBackend"
WHERE = f'CIAM_OTP["{SETTINGS_KEY}"]'
HINT = "See the AWS SNS settings in the docs (docs/sms/sns.md)."
#: botocore's own test of a region name (``InvalidRegionError``).
REGION_FORMAT = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
STRING_KEYS = ("REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "PROFILE")


def backend_configured() -> bool:
    """Whether this backend (or a subclass of it) is one of the site's backends.

    Told by the settings key it reads, so this module need not import the
    backend (which imports it for its ``check()``).
    """
    return checks_support.backend_configured(SETTINGS_KEY)


def run() -> list[checks.CheckMessage]:
    """The checks of this backend's settings."""
    conf = _conf()
    if not isinstance(conf, dict):
        return [checks.Error(f"{WHERE} must be a dict.", hint=HINT, id="ciam_otp.E142")]
    messages = value_checks(conf)
    try:
        found = sdk.import_sdk()
    except ImproperlyConfigured as exc:
        messages.append(checks.Error(str(exc), id="ciam_otp.E141"))
        return messages
    messages.extend(_environment_checks(conf, found))
    messages.extend(_time_budget(conf))
    return messages


def check_sns_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """:func:`run`, when this backend is in use; the signature fits ``checks.register``."""
    return run() if backend_configured() else []


def _conf() -> Any:
    """``CIAM_OTP["SNS_SMS"]`` over the defaults; as written when it is not a dict."""
    return checks_support.merged_section(SETTINGS_KEY, DEFAULTS)


def value_checks(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E142–E146 and W142: what the settings dict says on its own."""
    messages: list[checks.CheckMessage] = [
        checks.Error(f"{WHERE}: {problem}.", hint=HINT, id="ciam_otp.E142")
        for problem in _shape_problems(conf)
    ]
    problem = sms_type_problem(conf.get("SMS_TYPE"))
    if problem:
        messages.append(
            checks.Error(
                f'{WHERE}["SMS_TYPE"] {problem}.',
                hint='Use "Transactional" for one-time codes.',
                id="ciam_otp.E143",
            )
        )
    elif conf.get("SMS_TYPE") == "Promotional":
        messages.append(
            checks.Warning(
                f'{WHERE}["SMS_TYPE"] is "Promotional": SNS sends such SMS over cheaper, '
                "less reliable routes, and some countries hold them back (quiet hours, "
                "do-not-disturb registries); a code may arrive late or never.",
                hint='Use "Transactional" for one-time codes.',
                id="ciam_otp.W142",
            )
        )
    messages.extend(
        _scoped_errors(
            conf,
            "SENDER_ID",
            sender_id_problem,
            "ciam_otp.E144",
            "A sender ID registered for the destination country, or None.",
        )
    )
    messages.extend(
        _scoped_errors(
            conf,
            "ORIGINATION_NUMBER",
            origination_number_problem,
            "ciam_otp.E145",
            "One of the account's origination numbers in E.164, or None.",
        )
    )
    messages.extend(_credential_checks(conf))
    return messages


def _shape_problems(conf: dict[str, Any]) -> list[str]:
    """E142: unknown keys, and values of the wrong kind."""
    problems = checks_support.unknown_keys(conf, DEFAULTS)
    for key in STRING_KEYS:
        value = conf.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"{key} must be a string or None, not {value!r}")
    region = conf.get("REGION")
    if isinstance(region, str) and not REGION_FORMAT.match(region):
        problems.append(f"REGION {region!r} is not a region name such as 'us-east-1'")
    endpoint = conf.get("ENDPOINT_URL")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not re.match(r"^https?://[^/\s]+", endpoint)
    ):
        problems.append(f"ENDPOINT_URL must be an http(s) URL or None, not {endpoint!r}")
    try:
        sdk.timeouts(conf.get("TIMEOUT"))
    except ImproperlyConfigured:
        problems.append(
            f"TIMEOUT must be a positive number of seconds, not {conf.get('TIMEOUT')!r}"
        )
    try:
        max_price(conf.get("MAX_PRICE"))
    except ValueError as exc:
        problems.append(f"MAX_PRICE {exc}")
    if not isinstance(conf.get("CHECK_OPT_OUT"), bool):
        problems.append("CHECK_OPT_OUT must be True or False")
    for key in ("SENDER_ID", "ORIGINATION_NUMBER"):
        value = conf.get(key)
        if isinstance(value, dict):
            problems.extend(f"{key} {p}" for p in map(region_key_problem, value) if p)
        elif value is not None and not isinstance(value, str):
            problems.append(f"{key} must be a string, a dict by region or None, not {value!r}")
    return problems


def _scoped_errors(
    conf: dict[str, Any], key: str, problem_of: Any, check_id: str, hint: str
) -> list[checks.CheckMessage]:
    """One error per value of a string-or-dict-by-region setting that SNS would refuse."""
    value = conf.get(key)
    if value is not None and not isinstance(value, str | dict):
        return []  # E142
    messages: list[checks.CheckMessage] = []
    for where, entry in scoped_values(value):
        problem = problem_of(entry)
        if problem:
            messages.append(
                checks.Error(f'{WHERE}["{key}"]{where} {problem}.', hint=hint, id=check_id)
            )
    return messages


def _credential_checks(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E146: half a key pair, or a session token without one.

    boto3 does not refuse them: given an access key ID without its secret it
    quietly falls back to its default chain, so the messages would go out as
    whoever the instance role is, if anyone.
    """
    has_id, has_secret = bool(conf.get("ACCESS_KEY_ID")), bool(conf.get("SECRET_ACCESS_KEY"))
    problem = None
    if has_id != has_secret:
        present, missing = (
            ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
            if has_id
            else ("SECRET_ACCESS_KEY", "ACCESS_KEY_ID")
        )
        problem = f'{WHERE}["{present}"] is set but {missing} is not'
    elif conf.get("SESSION_TOKEN") and not has_id:
        problem = f'{WHERE}["SESSION_TOKEN"] is set without ACCESS_KEY_ID and SECRET_ACCESS_KEY'
    if problem is None:
        return []
    return [
        checks.Error(
            problem + "; boto3 would ignore it and use its default credential chain.",
            hint="Set both keys (and SESSION_TOKEN for temporary keys), or none of them "
            "to use the default chain: environment, shared files, SSO, container or "
            "instance role.",
            id="ciam_otp.E146",
        )
    ]


def _environment_checks(conf: dict[str, Any], found: sdk.SDK) -> list[checks.CheckMessage]:
    """W143 no region, W144 unknown profile: as this process's environment sees them.

    Warnings, not errors: the workers that send may have another environment
    (``AWS_DEFAULT_REGION`` set by ECS or Lambda) than the process running ``check``.
    """
    if any(
        conf.get(key) is not None and not isinstance(conf.get(key), str)
        for key in ("REGION", "PROFILE")
    ):
        return []  # E142
    try:
        region = sdk.resolve_region(conf, found)
    except found.exceptions.ProfileNotFound:
        return [
            checks.Warning(
                f'{WHERE}["PROFILE"] = {conf.get("PROFILE")!r} is not a profile of this '
                "environment's AWS config files; every send would fail (ProfileNotFound).",
                hint="Create the profile where the workers run, or leave PROFILE None.",
                id="ciam_otp.W144",
            )
        ]
    except Exception:  # noqa: BLE001 - a config file boto3 cannot read: the send will tell
        return []
    if region:
        return []
    return [
        checks.Warning(
            f'{WHERE}["REGION"] is not set and boto3 finds no region in this environment '
            "(AWS_DEFAULT_REGION, the profile): every send would fail "
            "(NoRegionError).",
            hint="Set REGION to a region where SNS sends SMS (e.g. 'us-east-1').",
            id="ciam_otp.W143",
        )
    ]


def _time_budget(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """W141: one delivery's worst case against the delivery task's soft time limit."""
    try:
        connect, read = sdk.timeouts(conf.get("TIMEOUT"))
    except ImproperlyConfigured:
        return []  # E142
    calls = 2 if conf.get("CHECK_OPT_OUT") is True else 1
    return checks_support.time_budget(
        WHERE,
        conf.get("TIMEOUT"),
        worst=calls * (connect + read),
        calls=calls,
        check_id="ciam_otp.W141",
    )
