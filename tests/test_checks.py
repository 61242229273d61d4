"""System checks: misconfiguration and dangerous production settings are reported, not crashed on.

The production warnings are deploy checks (``check --deploy``), listed whatever
``DEBUG`` says, as Django's own are.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from django.core import checks

from django_ciam_otp import checks as otp_checks
from django_ciam_otp.backends.sms.base import BaseSMSBackend

FILEBASED = "django_ciam_otp.backends.sms.filebased.SMSBackend"
REDIS_CACHE = {
    "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def ids(messages: list[checks.CheckMessage]) -> set[str]:
    return {m.id for m in messages if m.id}


def check_settings() -> list[checks.CheckMessage]:
    """Every check of the app, deploy checks included (what ``check --deploy`` shows)."""
    return otp_checks.check_settings() + otp_checks.check_deploy()


@pytest.fixture
def production(settings: Any, tmp_path: Any) -> Iterator[Any]:
    """A configuration fit for production: every check passes; tests break one thing each."""
    settings.DEBUG = False
    settings.CACHES = REDIS_CACHE
    settings.CIAM_OTP = {
        "HASH_KEY": "a-long-random-value-kept-apart-from-SECRET_KEY",
        "SMS_BACKEND": FILEBASED,
        "SMS_FILE_PATH": str(tmp_path),
        "SITE_CLIENT_ID": "my-site",
    }
    eager, broker = current_app.conf.task_always_eager, current_app.conf.broker_url
    current_app.conf.task_always_eager = False
    current_app.conf.broker_url = "redis://127.0.0.1:1/0"  # as with CELERY_BROKER_URL set
    yield settings
    current_app.conf.task_always_eager = eager
    current_app.conf.broker_url = broker


def test_production_configuration_passes(production):
    assert check_settings() == []


def test_production_warnings_are_deploy_checks_whatever_debug_says(production):
    production.DEBUG = True
    production.CIAM_OTP = {
        "SMS_BACKEND": "django_ciam_otp.backends.sms.console.SMSBackend",
        "SITE_CLIENT_ID": "my-site",
    }
    current_app.conf.task_always_eager = True
    assert otp_checks.check_settings() == []  # plain `check` stays quiet in development
    assert ids(checks.run_checks(include_deployment_checks=True)) >= {
        "ciam_otp.W010",
        "ciam_otp.W011",
        "ciam_otp.W012",
    }
    assert not ids(checks.run_checks()) & {"ciam_otp.W010", "ciam_otp.W011", "ciam_otp.W012"}


def test_missing_hash_key_is_w010(production):
    production.CIAM_OTP = {**production.CIAM_OTP, "HASH_KEY": None}
    (message,) = check_settings()
    assert message.id == "ciam_otp.W010"
    assert message.level == checks.WARNING
    assert "SECRET_KEY" in message.msg


@pytest.mark.parametrize("backend", ["console", "locmem"])
def test_non_delivering_sms_backend_is_w011(production, backend):
    path = f"django_ciam_otp.backends.sms.{backend}.SMSBackend"
    production.CIAM_OTP = {**production.CIAM_OTP, "SMS_BACKEND": path}
    assert ids(check_settings()) == {"ciam_otp.W011"}


def test_eager_celery_is_w012(production):
    current_app.conf.task_always_eager = True
    (message,) = check_settings()
    assert message.id == "ciam_otp.W012"
    assert "CELERY_BROKER_URL" in message.hint


def test_test_recipients_in_production_is_an_error(production):
    production.CIAM_OTP = {**production.CIAM_OTP, "TEST_RECIPIENTS_ENABLED": True}
    (message,) = check_settings()
    assert (message.id, message.level) == ("ciam_otp.E009", checks.ERROR)
    production.CIAM_OTP = {**production.CIAM_OTP, "ALLOW_TEST_RECIPIENTS_IN_PRODUCTION": True}
    assert check_settings() == []


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
        "django.core.cache.backends.filebased.FileBasedCache",
        "django.core.cache.backends.db.DatabaseCache",
    ],
)
def test_per_process_or_non_atomic_rate_limit_cache_is_w013(production, backend):
    production.CACHES = {"default": {"BACKEND": backend, "LOCATION": "x"}}
    (message,) = check_settings()
    assert message.id == "ciam_otp.W013"
    assert "Redis" in message.hint


def test_rate_limit_cache_alias_is_the_one_checked(production):
    production.CACHES = {
        **REDIS_CACHE,
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    production.RATELIMIT_USE_CACHE = "local"
    assert ids(check_settings()) == {"ciam_otp.W013"}


def test_django_ratelimit_agrees_when_installed(settings):
    """Sites that also install django_ratelimit get its own error for the same cache."""
    from django_ratelimit.checks import check_caches

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "django_ratelimit.E003" in ids(check_caches(None))
    settings.CACHES = REDIS_CACHE
    assert check_caches(None) == []


def test_checks_run_through_manage_py_check(production):
    """Registered with Django: ``check --deploy`` shows them (here the W011 of locmem)."""
    production.CIAM_OTP = {
        **production.CIAM_OTP,
        "SMS_BACKEND": "django_ciam_otp.backends.sms.locmem.SMSBackend",
    }
    assert "ciam_otp.W011" in ids(checks.run_checks(include_deployment_checks=True))


# --- configuration errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"HASH_KEYS": "typo"}, "ciam_otp.E002"),
        ({"SMS_BACKEND": "no.such.Backend"}, "ciam_otp.E003"),
        ({"SMS_RATE_LIMITS": ["1 per minute"]}, "ciam_otp.E004"),
        ({"SMS_RATE_LIMITS": "1/30s"}, "ciam_otp.E004"),
        ({"SMS_RATE_LIMITS": ["1/0s"]}, "ciam_otp.E004"),  # a period the counters cannot count
        ({"IP_RATE_LIMITS": [30]}, "ciam_otp.E004"),
        ({"PHONE_REGIONS": ["XX"]}, "ciam_otp.E005"),
        ({"PHONE_REGIONS": []}, "ciam_otp.E005"),
        ({"TOKEN_TTL": 5}, "ciam_otp.E006"),
        ({"MAX_RECIPIENT_FAILURES": 1000}, "ciam_otp.E006"),
        ({"DELIVERY_MAX_RETRIES": -1}, "ciam_otp.E006"),
        ({"DELIVERY_CLAIM_LEASE": 0}, "ciam_otp.E006"),
        ({"CONVERSION_MONITOR": {"MIN_RATIO": 2}}, "ciam_otp.E006"),
        ({"CONVERSION_MONITOR": {"NEW_PREFIX_NUMBERS": -1}}, "ciam_otp.E006"),
        ({"CONVERSION_MONITOR": {"ATTACK_RANGE_LENGTH": "11"}}, "ciam_otp.E006"),
        ({"CONVERSION_MONITOR": {"MIN_SEND": 5}}, "ciam_otp.E006"),
        ({"CONVERSION_MONITOR": "off"}, "ciam_otp.E006"),
        ({"USER_PHONE_FIELD": "no_such_field"}, "ciam_otp.E007"),
        ({"SMS_FILE_PATH": None}, "ciam_otp.E008"),
    ],
)
def test_misconfiguration_is_an_error(production, override, expected):
    production.CIAM_OTP = {**production.CIAM_OTP, **override}
    messages = check_settings()
    assert expected in ids(messages), messages
    assert all(m.level == checks.ERROR for m in messages if m.id == expected)


def test_short_default_code_is_w001(production):
    production.CIAM_OTP = {**production.CIAM_OTP, "DEFAULT_CODE_LENGTH": 4}
    assert ids(check_settings()) == {"ciam_otp.W001"}


def test_settings_must_be_a_dict(settings):
    settings.CIAM_OTP = ["HASH_KEY"]
    assert ids(check_settings()) == {"ciam_otp.E001"}


# --- backends answer for their own checks ------------------------------------------------------


class GatewayBackend(BaseSMSBackend):
    """A site's backend with a settings dict in CIAM_OTP and a check of its own."""

    settings_key = "GATEWAY"

    @classmethod
    def check(cls, **kwargs):
        return [*super().check(**kwargs), checks.Warning("settings", id="gateway.W001")]

    @classmethod
    def check_database(cls, databases):
        found = [checks.Warning(f"databases={databases}", id="gateway.W002")]
        return [*super().check_database(databases), *found]


def test_configured_backends_are_asked_for_their_checks(production):
    production.CIAM_OTP = {**production.CIAM_OTP, "SMS_BACKEND": f"{__name__}.GatewayBackend"}
    production.CIAM_OTP["GATEWAY"] = {"URL": "https://sms.example.net"}
    assert [m.msg for m in check_settings()] == ["settings"]  # GATEWAY is not E002
    # Django 6 passes every alias to every check: the settings check still reads no database.
    assert [m.msg for m in otp_checks.check_settings(databases=["default"])] == ["settings"]
    assert [m.msg for m in otp_checks.check_backend_databases(databases=["default"])] == [
        "databases=['default']"
    ]
    assert otp_checks.check_backend_databases(databases=None) == []
    # The database checks are tagged: a plain `manage.py check` (any Django) skips them.
    assert "gateway.W002" not in [m.id for m in checks.run_checks()]
    assert "gateway.W002" in [m.id for m in checks.run_checks(databases=["default"])]


def test_a_key_no_backend_claims_is_unknown(production):
    production.CIAM_OTP = {**production.CIAM_OTP, "GATEWAY": {}}
    assert ids(check_settings()) == {"ciam_otp.E002"}


def test_a_shipped_backends_key_is_known_whichever_backend_is_configured(production):
    production.CIAM_OTP = {**production.CIAM_OTP, "TENCENT_SMS": {"REGION": None}}
    assert check_settings() == []  # neither E002 nor the Tencent checks (not configured)


def test_core_check_and_settings_modules_name_no_provider():
    """Providers are reached through the configured classes only (issue 13)."""
    package = Path(otp_checks.__file__).parent
    for name in ("checks.py", "conf.py", "apps.py", "backends/loading.py", "backends/settings.py"):
        source = (package / name).read_text(encoding="utf-8")
        imported = [
            getattr(node, "module", None) or alias.name
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        ]
        assert not [m for m in imported if m and re.search(r"\b(sms|email)\b", m)], name
        # Prose may cite a provider's practice ("Tencent Cloud SMS's defaults"); code may not.
        code = re.sub(r"#.*|\"\"\".*?\"\"\"", "", source, flags=re.S)
        assert "tencent" not in code.lower(), name
