"""Backends read their settings as django-anymail's do: keyword, else setting, else default.

``backends.settings.backend_setting`` and ``backends.loading.get_backend``, for
a backend of these tests, one built-in backend (filebased, email) and the
Tencent one (whose settings dict ``CIAM_OTP["TENCENT_SMS"]`` it owns).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends import loading
from django_ciam_otp.backends.email.django import EmailBackend
from django_ciam_otp.backends.settings import REQUIRED, backend_setting
from django_ciam_otp.backends.sms import filebased
from django_ciam_otp.backends.sms.base import BaseSMSBackend
from django_ciam_otp.backends.sms.tencent import SMSBackend as TencentBackend
from django_ciam_otp.backends.sms.tencent import conf as tencent_conf

from .tencent.fake import tencent_conf as complete_tencent_conf


class GatewayBackend(BaseSMSBackend):
    """A backend with a settings dict of its own, ``CIAM_OTP["GATEWAY"]``."""

    settings_key: ClassVar[str | None] = "GATEWAY"

    def __init__(self, **kwargs: Any) -> None:
        self.url = backend_setting("url", backend=self, kwargs=kwargs)
        self.timeout = backend_setting("timeout", backend=self, kwargs=kwargs, default=5)
        super().__init__(**kwargs)


@pytest.fixture
def gateway_settings(settings: Any) -> Any:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "GATEWAY": {"URL": "https://from-settings"}}
    return settings


# --- backend_setting ---------------------------------------------------------------------


def test_keyword_beats_setting_beats_default(gateway_settings: Any) -> None:
    assert (GatewayBackend().url, GatewayBackend().timeout) == ("https://from-settings", 5)
    backend = GatewayBackend(url="https://from-kwarg", timeout=2)
    assert (backend.url, backend.timeout) == ("https://from-kwarg", 2)


def test_a_keyword_is_popped_and_the_rest_reaches_the_base_class(gateway_settings: Any) -> None:
    assert GatewayBackend(url="https://x", region="eu").options == {"region": "eu"}


def test_a_none_keyword_means_not_given(gateway_settings: Any) -> None:
    assert GatewayBackend(url=None).url == "https://from-settings"


def test_a_setting_written_as_none_is_used_when_optional(gateway_settings: Any) -> None:
    gateway_settings.CIAM_OTP = {
        **gateway_settings.CIAM_OTP,
        "GATEWAY": {"URL": "u", "TIMEOUT": None},
    }
    assert GatewayBackend().timeout is None  # the backend (and its checks) see what was written


@pytest.mark.parametrize("section", [{}, {"URL": None}])
def test_a_missing_required_setting_names_it(settings: Any, section: dict[str, Any]) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "GATEWAY": section}
    with pytest.raises(ImproperlyConfigured) as caught:
        GatewayBackend()
    message = str(caught.value)
    assert 'CIAM_OTP["GATEWAY"]["URL"]' in message
    assert "url=" in message
    assert f"{__name__}.GatewayBackend" in message


def test_a_settings_section_must_be_a_dict(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "GATEWAY": ["https://x"]}
    with pytest.raises(ImproperlyConfigured, match=r'CIAM_OTP\["GATEWAY"\] must be a dict'):
        GatewayBackend()


def test_a_backend_without_a_section_reads_only_the_top_level_key_it_names(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "STREAM": "not mine", "SMS_FILE_PATH": "/tmp/x"}
    assert backend_setting("stream", backend=BaseSMSBackend, kwargs={}, default=None) is None
    found = backend_setting("path", backend=BaseSMSBackend, kwargs={}, setting="SMS_FILE_PATH")
    assert found == "/tmp/x"
    with pytest.raises(ImproperlyConfigured, match=r"needs stream=\.\.\."):
        backend_setting("stream", backend=BaseSMSBackend, kwargs={}, default=REQUIRED)


# --- a built-in backend: filebased (top-level SMS_FILE_PATH), email (EMAIL_FROM) ----------


def test_filebased_keyword_beats_setting(settings: Any, tmp_path: Path) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_FILE_PATH": str(tmp_path / "setting")}
    assert filebased.SMSBackend().file_path == (tmp_path / "setting").resolve()
    assert filebased.SMSBackend(file_path=tmp_path / "kw").file_path == (tmp_path / "kw").resolve()


def test_filebased_without_a_directory_names_the_setting(settings: Any) -> None:
    settings.CIAM_OTP = {k: v for k, v in settings.CIAM_OTP.items() if k != "SMS_FILE_PATH"}
    with pytest.raises(ImproperlyConfigured, match=r'CIAM_OTP\["SMS_FILE_PATH"\].*file_path='):
        filebased.SMSBackend()


def test_email_keyword_beats_setting_beats_default(settings: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "site@example.com"
    assert EmailBackend().get_from_email() == "site@example.com"
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_FROM": "codes@example.com"}
    assert EmailBackend().get_from_email() == "codes@example.com"
    assert EmailBackend(from_email="kw@example.com").get_from_email() == "kw@example.com"


# --- Tencent: its own dict, its own defaults -------------------------------------------------


def test_tencent_keyword_beats_setting_beats_default(settings: Any) -> None:
    conf = complete_tencent_conf()
    del conf["TIMEOUT"]  # left to the backend's default
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TENCENT_SMS": {**conf, "SIGN_NAME": "Setting"}}

    backend = TencentBackend(region="ap-beijing")

    assert backend.config["REGION"] == "ap-beijing"  # keyword
    assert backend.config["SIGN_NAME"] == "Setting"  # setting
    assert backend.config["TIMEOUT"] == tencent_conf.DEFAULTS["TIMEOUT"] == 5  # default
    assert set(backend.config) == set(tencent_conf.DEFAULTS)


def test_tencent_defaults_are_the_backends_not_the_cores() -> None:
    from django_ciam_otp.conf import DEFAULTS

    assert "TENCENT_SMS" not in DEFAULTS
    assert TencentBackend.settings_key == tencent_conf.SETTINGS_KEY == "TENCENT_SMS"


# --- get_backend ----------------------------------------------------------------------------


def test_get_backend_passes_keywords_to_the_configured_class(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{__name__}.GatewayBackend"}
    backend = loading.get_backend("sms", url="https://kw", timeout=1)
    assert isinstance(backend, GatewayBackend)
    assert (backend.url, backend.timeout) == ("https://kw", 1)


def test_get_backend_builds_the_email_backend_with_its_options() -> None:
    backend = loading.get_backend("email", from_email="kw@example.com")
    assert isinstance(backend, EmailBackend)
    assert backend.get_from_email() == "kw@example.com"


def test_configured_backends_skip_what_cannot_be_imported(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": "no.such.SMSBackend"}
    assert loading.configured_backends() == [EmailBackend]


def test_backend_settings_keys_hold_the_shipped_and_the_configured(settings: Any) -> None:
    shipped = {"TENCENT_SMS", "TWILIO_SMS", "ALIYUN_SMS", "SNS_SMS"}
    assert loading.backend_settings_keys() == shipped  # locmem configured
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_BACKEND": f"{__name__}.GatewayBackend"}
    assert loading.backend_settings_keys() == shipped | {"GATEWAY"}
