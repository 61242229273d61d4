"""The contract every SMS backend keeps, as a mixin its test class inherits.

A backend's test module subclasses :class:`SMSBackendContract`, provides a
``backend`` fixture and implements :meth:`SMSBackendContract.delivered`, which
reads back what the backend actually delivered (from a stream, the outbox, a
file, or a mocked HTTP request). Every test below then runs against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from django_ciam_otp.backends.base import Accepted, OTPMessage
from django_ciam_otp.backends.sms.base import BaseSMSBackend

PHONE = "+8613612345678"

B = TypeVar("B", bound=BaseSMSBackend)


def make_message(**overrides: Any) -> OTPMessage:
    """An SMS :class:`OTPMessage` with sensible defaults; override any field."""
    fields: dict[str, Any] = {
        "channel": "sms",
        "recipient": PHONE,
        "code": "482915",
        "usage": "login",
        "validity_seconds": 300,
        "language": "en",
        "token_id": 7,
    }
    fields.update(overrides)
    return OTPMessage(**fields)


class SMSBackendContract(Generic[B]):
    """Tests shared by all SMS backends; ``B`` is the backend class under test."""

    @pytest.fixture
    def backend(self) -> B:
        raise NotImplementedError("subclasses provide a backend fixture")

    def delivered(self, backend: B, message_id: str) -> tuple[str, str]:
        """``(phone number, text)`` of the message the backend sent as ``message_id``."""
        raise NotImplementedError

    def test_is_an_sms_backend(self, backend: B) -> None:
        assert isinstance(backend, BaseSMSBackend)

    def test_send_returns_a_non_empty_str_id(self, backend: B) -> None:
        """A str, or an ``Accepted`` whose ``message_id`` is one (receipts name it)."""
        sent = backend.send(make_message())
        message_id = sent.message_id if isinstance(sent, Accepted) else sent
        assert isinstance(message_id, str)
        assert message_id

    def test_ids_are_unique(self, backend: B) -> None:
        ids = {backend.send(make_message()) for _ in range(5)}
        assert len(ids) == 5

    def test_delivers_to_the_recipient(self, backend: B) -> None:
        message_id = backend.send(make_message(recipient="+8613900001111"))
        phone, _ = self.delivered(backend, message_id)
        assert phone == "+8613900001111"

    def test_text_has_code_usage_and_validity(self, backend: B) -> None:
        message_id = backend.send(make_message(code="913370", usage="signup"))
        _, text = self.delivered(backend, message_id)
        assert text == (
            "Your verification code for Sign up is 913370. "
            "It is valid for 5 minutes. Do not share it."
        )

    def test_text_is_one_line(self, backend: B) -> None:
        message_id = backend.send(make_message())
        _, text = self.delivered(backend, message_id)
        assert "\n" not in text
        assert text == text.strip()

    def test_validity_is_singular_for_one_minute(self, backend: B) -> None:
        message_id = backend.send(make_message(validity_seconds=60))
        _, text = self.delivered(backend, message_id)
        assert "valid for 1 minute." in text

    def test_validity_never_promises_more_than_the_code_has(self, backend: B) -> None:
        message_id = backend.send(make_message(validity_seconds=179))
        _, text = self.delivered(backend, message_id)
        assert "valid for 2 minutes." in text  # not 3: a 179 s code is gone at 3 minutes

    @pytest.mark.parametrize(
        ("usage", "label"),
        [
            ("login", "登录"),
            ("signup", "注册"),
            ("update_userinfo", "更新用户信息"),
            ("reset_password", "重置密码"),
        ],
    )
    def test_text_is_chinese_for_zh_hans(self, backend: B, usage: str, label: str) -> None:
        message_id = backend.send(make_message(usage=usage, language="zh-hans"))
        _, text = self.delivered(backend, message_id)
        assert text == f"您的{label}验证码为 482915，5 分钟内有效，请勿泄露。"

    def test_language_does_not_leak_into_the_caller(self, backend: B) -> None:
        from django.utils import translation

        with translation.override("en"):
            backend.send(make_message(language="zh-hans"))
            assert translation.get_language() == "en"

    def test_site_template_for_one_usage_wins(
        self, backend: B, settings: Any, tmp_path: Path
    ) -> None:
        template = tmp_path / "django_ciam_otp" / "sms" / "reset_password.txt"
        template.parent.mkdir(parents=True)
        template.write_text("[Acme] {{ code }} resets your password & expires soon.\n")
        settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

        reset_id = backend.send(make_message(usage="reset_password"))
        login_id = backend.send(make_message(usage="login"))

        assert self.delivered(backend, reset_id)[1] == (
            "[Acme] 482915 resets your password & expires soon."
        )
        assert self.delivered(backend, login_id)[1].startswith("Your verification code for Log in")
