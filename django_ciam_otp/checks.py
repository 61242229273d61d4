"""System checks (``manage.py check``): misconfiguration is reported here, not at request time.

Ids: ``ciam_otp.E0xx`` errors stop ``runserver``/``migrate``; ``ciam_otp.W0xx``
warnings flag what is probably a mistake. Settings that are fine for a demo
and dangerous in production are deploy checks (``manage.py check --deploy``,
Django's convention), listed whatever ``DEBUG`` says: E009, W010–W014.

Backends answer for their own settings: each configured backend class is asked
for its checks (``BaseBackend.check``, ids of their own such as E008 or
E101–E112), so this module names no provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import phonenumbers
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.utils.module_loading import import_string

from .backends import loading
from .conf import DEFAULTS, IMPORT_STRINGS, SETTINGS_NAME, otp_settings
from .counters.rates import parse_rate

_RATE_KEYS = (
    "SMS_RATE_LIMITS",
    "EMAIL_RATE_LIMITS",
    "CLIENT_RATE_LIMITS",
    "IP_RATE_LIMITS",
    "AUTH_FAILURE_IP_RATE_LIMITS",
    "AUTH_FAILURE_CLIENT_RATE_LIMITS",
)


def _error(msg: str, id_: int, hint: str | None = None) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"ciam_otp.E{id_:03d}")


def _warning(msg: str, id_: int, hint: str | None = None) -> checks.Warning:
    return checks.Warning(msg, hint=hint, id=f"ciam_otp.W{id_:03d}")


def _is_rate(rate: object) -> bool:
    """Whether the counters can read ``rate`` (the parser they use, so "5/0s" fails here)."""
    if not isinstance(rate, str):
        return False
    try:
        parse_rate(rate)
    except ImproperlyConfigured:
        return False
    return True


@checks.register()
def check_settings(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    raw = getattr(settings, SETTINGS_NAME, {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return [_error(f"{SETTINGS_NAME} must be a dict.", 1)]
    errors: list[checks.CheckMessage] = []
    unknown = sorted(set(raw) - set(DEFAULTS) - loading.backend_settings_keys())
    if unknown:
        errors.append(
            _error(
                f"Unknown {SETTINGS_NAME} keys: {', '.join(unknown)}.",
                2,
                hint="Check the spelling against the settings reference in the README.",
            )
        )
    for name in IMPORT_STRINGS:
        path = getattr(otp_settings, name)
        if path:
            try:
                import_string(path)
            except ImportError as exc:
                errors.append(
                    _error(f"{SETTINGS_NAME}['{name}'] = {path!r} cannot be imported: {exc}", 3)
                )
    for name in _RATE_KEYS:
        rates = getattr(otp_settings, name)
        if not isinstance(rates, list | tuple) or not all(_is_rate(r) for r in rates):
            errors.append(
                _error(
                    f"{SETTINGS_NAME}['{name}'] must be a list of rates such as '5/h' "
                    "(a count per period of at least one second).",
                    4,
                    hint='For example ["1/30s", "5/h", "10/d"]; an empty list turns the limit off.',
                )
            )
    regions = otp_settings.PHONE_REGIONS
    bad_regions = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if not regions or bad_regions:
        errors.append(
            _error(
                f"{SETTINGS_NAME}['PHONE_REGIONS'] must list ISO 3166 region codes; "
                f"not known: {', '.join(map(str, bad_regions)) or '(empty list)'}.",
                5,
            )
        )
    errors.extend(_check_numbers())
    errors.extend(_check_user_fields())
    errors.extend(_check_backends())
    errors.extend(_check_delivery())
    errors.extend(_check_site_client())
    return errors


def _check_numbers() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    bounds = {
        "DEFAULT_CODE_LENGTH": (4, 10),
        "DEFAULT_CODE_VALIDITY": (10, 3600),
        "TOKEN_TTL": (30, 86400),
        "MAX_VERIFY_ATTEMPTS": (1, 100),
        "MAX_RECIPIENT_FAILURES": (1, 100),
        "RECIPIENT_LOCKOUT_SECONDS": (1, 30 * 86400),
        "DELIVERY_MAX_RETRIES": (0, 20),
        "DELIVERY_CLAIM_LEASE": (1, 3600),
        "DELIVERY_BATCH_SIZE": (1, 1000),
        "BACKEND_PAUSE_SECONDS": (1, 86400),
        "LOOKUP_CACHE_SECONDS": (0, 300),
    }
    values = {name: getattr(otp_settings, name) for name in bounds}
    errors.extend(_check_ints(values, bounds, f"{SETTINGS_NAME}['{{}}']"))
    errors.extend(_check_monitor())
    if isinstance(otp_settings.DEFAULT_CODE_LENGTH, int) and otp_settings.DEFAULT_CODE_LENGTH < 6:
        errors.append(
            _warning(
                "DEFAULT_CODE_LENGTH below 6 gives fewer than 20 bits per code.",
                1,
                hint="NIST SP 800-63B asks for at least 20 bits of entropy (6 digits).",
            )
        )
    return errors


def _check_ints(
    values: Mapping[str, Any], bounds: Mapping[str, tuple[int, int]], label: str
) -> list[checks.CheckMessage]:
    """E006 for each of ``bounds`` whose value is not an integer in its range."""
    errors: list[checks.CheckMessage] = []
    for key, (low, high) in bounds.items():
        value = values.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors.append(
                _error(f"{label.format(key)} must be an integer from {low} to {high}.", 6)
            )
    return errors


def _check_monitor() -> list[checks.CheckMessage]:
    """``CONVERSION_MONITOR``: known keys, integers in range, a ratio between 0 and 1."""
    monitor = otp_settings.CONVERSION_MONITOR
    name = f"{SETTINGS_NAME}['CONVERSION_MONITOR']"
    if not isinstance(monitor, dict):
        return [_error(f"{name} must be a dict.", 6)]
    errors: list[checks.CheckMessage] = []
    unknown = sorted(set(monitor) - set(DEFAULTS["CONVERSION_MONITOR"]))
    if unknown:
        errors.append(_error(f"Unknown {name} keys: {', '.join(map(str, unknown))}.", 6))
    bounds = {
        "WINDOW": (60, 7 * 86400),
        "MIN_SENDS": (1, 100000),
        "COOLDOWN": (1, 30 * 86400),
        "NEW_PREFIX_NUMBERS": (0, 100000),
        "PREFIX_MEMORY": (1, 365 * 86400),
        "ATTACK_BLOCKS": (0, 100000),
        "ATTACK_RANGE_LENGTH": (0, 15),
        "ATTACK_RANGE_NUMBERS": (0, 100000),
        "SITE_WINDOW": (0, 86400),
        "SITE_HISTORY": (3600, 30 * 86400),
        "SITE_HISTORY_MIN_SENDS": (1, 10**9),
        "SITE_MIN_UNPROVEN": (1, 10**9),
        "SITE_MIN_SENDS": (1, 10**9),
        "TIGHTENED_MIN_SECONDS": (0, 7 * 86400),
        "UNPROVEN_CODES_PER_HOUR": (1, 10**9),
    }
    errors.extend(_check_ints(monitor, bounds, f"{name}['{{}}']"))
    for key, (low, high) in {
        "MIN_RATIO": (0, 1),
        "UNPROVEN_SHARE_FLOOR": (0, 1),
        "NEW_SITE_RATIO": (0, 1),
        "CONVERSION_DROP": (0, 1),
        "UNPROVEN_SURGE": (1, 100),
    }.items():
        value = monitor.get(key)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not low <= value <= high
        ):
            errors.append(_error(f"{name}['{key}'] must be a number from {low} to {high}.", 6))
    return errors


def _check_user_fields() -> list[checks.CheckMessage]:
    from django.contrib.auth import get_user_model

    try:
        model = get_user_model()
    except Exception:  # noqa: BLE001 - auth's own checks report this
        return []
    errors: list[checks.CheckMessage] = []
    for key in ("USER_EMAIL_FIELD", "USER_PHONE_FIELD"):
        field = getattr(otp_settings, key)
        if not field:
            continue
        try:
            model._meta.get_field(field)
        except FieldDoesNotExist:
            errors.append(
                _error(
                    f"{SETTINGS_NAME}['{key}'] = {field!r} is not a field of {model.__name__}.", 7
                )
            )
    if (
        otp_settings.USER_LOOKUP
        and not otp_settings.USER_ADDRESS
        and not otp_settings.USER_PHONE_FIELD
    ):
        errors.append(
            _warning(
                f"{SETTINGS_NAME}['USER_LOOKUP'] is set, but nothing says where a user's mobile "
                "number is stored, so no user it finds by phone number counts as the number's "
                "owner (resets by SMS send nothing, sign-ups are never phone_number_is_used).",
                2,
                hint=f"Set {SETTINGS_NAME}['USER_ADDRESS'] to a callable(user, channel) returning "
                "the address stored on the user, or USER_PHONE_FIELD.",
            )
        )
    share = otp_settings.RECIPIENT_SHARE_PER_CLIENT
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1:
        errors.append(
            _error(f"{SETTINGS_NAME}['RECIPIENT_SHARE_PER_CLIENT'] must be a number in (0, 1].", 6)
        )
    return errors


def _check_backends() -> list[checks.CheckMessage]:
    """E020–E022 (the SMS backend list, routes, circuit), then each backend's own checks."""
    from .backends.routing import check_routing

    errors: list[checks.CheckMessage] = [
        checks.Error(text, hint="See 'Providers, routing and failover' in the docs.", id=id_)
        for id_, text in check_routing()
    ]
    for backend in loading.configured_backends():
        errors.extend(backend.check())
    return errors


@checks.register(checks.Tags.database)
def check_backend_databases(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Each configured backend's checks that read the database (``check --database``, ``migrate``).

    Tagged ``database``, so a plain ``manage.py check`` skips them: from
    Django 6 it passes every alias to every check, tagged or not.
    """
    if not databases:
        return []
    errors: list[checks.CheckMessage] = []
    for backend in loading.configured_backends():
        errors.extend(backend.check_database(list(databases)))
    return errors


def _check_delivery() -> list[checks.CheckMessage]:
    """E010–E012: ``DELIVERY`` is valid, and "celery" has an app and a broker to publish to."""
    from . import dispatch

    mode = otp_settings.DELIVERY
    if mode is not None and mode not in dispatch.MODES:
        return [_error(f"{SETTINGS_NAME}['DELIVERY'] must be None, 'celery' or 'inline'.", 10)]
    if dispatch.delivery_mode() != dispatch.CELERY:
        return []
    app = dispatch.celery_app()
    if app is None:
        return [
            _error(
                f"{SETTINGS_NAME}['DELIVERY'] is 'celery' but the site has no Celery app: "
                "sends would answer 503 (Celery's fallback app tries RabbitMQ on localhost).",
                11,
                hint="Add a Celery app for your project (proj/celery.py, imported from "
                "proj/__init__.py; see the docs' 'Celery in production'), or set DELIVERY to "
                "'inline' (or leave it None) to deliver in the request.",
            )
        ]
    if not app.conf.broker_url and not app.conf.task_always_eager:
        return [
            _error(
                f"Celery app {app.main!r} has no broker (broker_url is not set), and "
                f"{SETTINGS_NAME}['DELIVERY'] is 'celery': sends would answer 503.",
                12,
                hint="Set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) with "
                "app.config_from_object('django.conf:settings', namespace='CELERY').",
            )
        ]
    return []


def _check_site_client() -> list[checks.CheckMessage]:
    """W015: the authentication backend acts as ``SITE_CLIENT_ID``, which is not set."""
    backends = getattr(settings, "AUTHENTICATION_BACKENDS", [])
    if otp_settings.SITE_CLIENT_ID or "django_ciam_otp.backends.auth.OTPBackend" not in backends:
        return []
    return [
        _warning(
            "django_ciam_otp.backends.auth.OTPBackend is in AUTHENTICATION_BACKENDS but "
            f"{SETTINGS_NAME}['SITE_CLIENT_ID'] is not set: every code login fails.",
            15,
            hint="Create the site's own client (manage.py create_otp_client --name 'My site' "
            f"--client-id my-site) and set {SETTINGS_NAME}['SITE_CLIENT_ID'] = 'my-site'.",
        )
    ]


@checks.register(deploy=True)
def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """What is fine for a demo and dangerous in production (``check --deploy``)."""
    raw = getattr(settings, SETTINGS_NAME, None)
    if raw is not None and not isinstance(raw, dict):
        return []  # E001 says so
    warnings: list[checks.CheckMessage] = []
    if (
        otp_settings.TEST_RECIPIENTS_ENABLED
        and not otp_settings.ALLOW_TEST_RECIPIENTS_IN_PRODUCTION
    ):
        warnings.append(
            _error(
                "TEST_RECIPIENTS_ENABLED in production: anyone who knows a test recipient's "
                "fixed code can use it.",
                9,
                hint="Turn it off, or set ALLOW_TEST_RECIPIENTS_IN_PRODUCTION = True on purpose "
                "(e.g. for an app-store review account).",
            )
        )
    if not otp_settings.HASH_KEY:
        warnings.append(
            _warning(
                "CIAM_OTP['HASH_KEY'] is not set; client secrets and codes are hashed with a key "
                "derived from SECRET_KEY, so rotating SECRET_KEY invalidates every client secret.",
                10,
                hint="Set CIAM_OTP['HASH_KEY'] to a long random value kept apart from SECRET_KEY.",
            )
        )
    warnings.extend(_check_sms_backend_delivers())
    warnings.extend(_check_rate_limit_cache())
    from . import dispatch

    app = dispatch.celery_app()
    mode = dispatch.delivery_mode() if otp_settings.DELIVERY in (None, *dispatch.MODES) else None
    if mode == dispatch.CELERY and app is not None and app.conf.task_always_eager:
        warnings.append(
            _warning(
                "Celery runs tasks eagerly (task_always_eager): every /otp/send waits for the "
                "SMS or email provider.",
                12,
                hint="Set CELERY_BROKER_URL and run a worker.",
            )
        )
    if mode == dispatch.INLINE:
        warnings.append(
            _warning(
                "Codes are delivered inline (CIAM_OTP['DELIVERY'] is 'inline', or the site has "
                "no Celery app): every /otp/send waits for the SMS or email provider, and a "
                "provider outage is retried inside the request.",
                14,
                hint="Add a Celery app with a broker and run a worker (docs: 'Celery in "
                "production'); DELIVERY then picks 'celery' by itself.",
            )
        )
    return warnings


def _check_sms_backend_delivers() -> list[checks.CheckMessage]:
    """W011: the SMS backend only shows or keeps messages (it says so: ``delivers = False``)."""
    from .backends.routing import sms_backends

    try:
        entries = [(entry, entry.backend_class()) for entry in sms_backends()]
    except Exception:  # noqa: BLE001 - E003/E020 report a path that cannot be imported
        return []
    return [
        _warning(
            f"SMS backend {entry.path} ({entry.name!r}) does not deliver messages.",
            11,
            hint="Use a backend that reaches phones: a provider's (docs: 'Writing an SMS "
            "backend' lists the ones shipped with the app).",
        )
        for entry, backend in entries
        if not getattr(backend, "delivers", True)
    ]


def _check_rate_limit_cache() -> list[checks.CheckMessage]:
    """W013: the counters live in a cache that is per-process or not atomic.

    django-ratelimit refuses such caches with its own check, but only in sites
    that list ``django_ratelimit`` in ``INSTALLED_APPS``, which this app does
    not need. Its table of unfit backends is reused so the two never disagree.
    """
    from django_ratelimit.checks import KNOWN_BROKEN_CACHE_BACKENDS

    alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    backend = getattr(settings, "CACHES", {}).get(alias, {}).get("BACKEND", "")
    reason = KNOWN_BROKEN_CACHE_BACKENDS.get(backend)
    if reason is None:
        return []
    return [
        _warning(
            f"Rate limits are counted in cache {alias!r} ({backend}), which {reason}: with "
            "several processes or servers the limits do not hold.",
            13,
            hint="Use a shared cache such as Redis (django_redis.cache.RedisCache); "
            "see RATELIMIT_USE_CACHE.",
        )
    ]
