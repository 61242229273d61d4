"""The email backend: Django's email framework, templates, i18n and error mapping."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from django_ciam_otp.backends.base import (
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.email.django import EmailBackend

ADDRESS = "alice@example.com"


def make_message(**overrides: Any) -> OTPMessage:
    fields: dict[str, Any] = {
        "channel": "email",
        "recipient": ADDRESS,
        "code": "482915",
        "usage": "login",
        "validity_seconds": 300,
        "language": "en",
        "token_id": 7,
    }
    fields.update(overrides)
    return OTPMessage(**fields)


def html_of(email: Any) -> str:
    ((content, mimetype),) = email.alternatives
    assert mimetype == "text/html"
    return str(content)


class RaisingEmailBackend(BaseEmailBackend):
    """A Django email backend that fails the way a real one would."""

    error: ClassVar[BaseException | None] = None
    result: ClassVar[int] = 1

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if self.error is not None:
            raise self.error
        return self.result


RAISING = f"{__name__}.RaisingEmailBackend"


@pytest.fixture
def raising(settings: Any, monkeypatch: pytest.MonkeyPatch) -> type[RaisingEmailBackend]:
    settings.EMAIL_BACKEND = RAISING
    monkeypatch.setattr(RaisingEmailBackend, "error", None)
    monkeypatch.setattr(RaisingEmailBackend, "result", 1)
    return RaisingEmailBackend


class TestEmailBackend:
    def test_sends_one_email_to_the_recipient(self, mailoutbox: list[Any]) -> None:
        EmailBackend().send(make_message())
        (email,) = mailoutbox
        assert email.to == [ADDRESS]
        assert email.cc == [] and email.bcc == []

    def test_subject_text_and_html(self, mailoutbox: list[Any]) -> None:
        EmailBackend().send(make_message(code="913370", usage="signup", validity_seconds=600))
        (email,) = mailoutbox
        assert email.subject == "Your verification code for Sign up"
        assert email.body.startswith("Your verification code for Sign up is:\n\n    913370\n")
        assert "It is valid for 10 minutes." in email.body
        assert "Do not share this code with anyone." in email.body
        assert "If you did not request this code, you can safely ignore this email." in email.body
        html = html_of(email)
        assert html.startswith("<!DOCTYPE html>")
        assert '<html lang="en" dir="ltr">' in html
        assert "<title>Your verification code for Sign up</title>" in html
        assert ">913370</p>" in html
        assert "monospace" in html
        assert "It is valid for 10 minutes." in html
        assert "If you did not request this code, you can safely ignore this email." in html

    def test_singular_minute(self, mailoutbox: list[Any]) -> None:
        EmailBackend().send(make_message(validity_seconds=45))
        (email,) = mailoutbox
        assert "It is valid for 1 minute." in email.body
        assert "It is valid for 1 minute." in html_of(email)

    def test_html_layout_tables_are_presentational(self, mailoutbox: list[Any]) -> None:
        EmailBackend().send(make_message())
        html = html_of(mailoutbox[0])
        assert html.count("<table") == html.count('<table role="presentation"') == 2

    def test_chinese_for_zh_hans(self, mailoutbox: list[Any]) -> None:
        EmailBackend().send(make_message(usage="reset_password", language="zh-hans"))
        (email,) = mailoutbox
        assert email.subject == "您的重置密码验证码"
        assert email.body.startswith("您的重置密码验证码为：\n\n    482915\n")
        assert "5 分钟内有效。" in email.body
        assert "请勿向任何人泄露此验证码。" in email.body
        assert "如果您没有请求此验证码，请忽略本邮件。" in email.body
        html = html_of(email)
        assert '<html lang="zh-hans"' in html
        assert "<title>您的重置密码验证码</title>" in html
        assert "5 分钟内有效。" in html
        assert "Your verification code" not in html

    def test_from_default_from_email(self, mailoutbox: list[Any], settings: Any) -> None:
        settings.DEFAULT_FROM_EMAIL = "site@example.com"
        EmailBackend().send(make_message())
        assert mailoutbox[0].from_email == "site@example.com"

    def test_from_ciam_otp_email_from(self, mailoutbox: list[Any], settings: Any) -> None:
        settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_FROM": "Acme <codes@example.com>"}
        EmailBackend().send(make_message())
        assert mailoutbox[0].from_email == "Acme <codes@example.com>"

    def test_from_email_option_wins(self, mailoutbox: list[Any], settings: Any) -> None:
        settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_FROM": "codes@example.com"}
        EmailBackend(from_email="other@example.com").send(make_message())
        assert mailoutbox[0].from_email == "other@example.com"

    def test_returns_the_message_id_header(self, mailoutbox: list[Any]) -> None:
        message_id = EmailBackend().send(make_message())
        assert message_id.startswith("<") and message_id.endswith(">") and "@" in message_id
        assert mailoutbox[0].message()["Message-ID"] == message_id

    def test_marked_as_automatic(self, mailoutbox: list[Any]) -> None:
        EmailBackend().send(make_message())
        assert mailoutbox[0].message()["Auto-Submitted"] == "auto-generated"

    def test_message_ids_are_unique(self, mailoutbox: list[Any]) -> None:
        backend = EmailBackend()
        ids = {backend.send(make_message()) for _ in range(3)}
        assert len(ids) == 3

    def test_site_templates_override_the_defaults(
        self, mailoutbox: list[Any], settings: Any, tmp_path: Path
    ) -> None:
        folder = tmp_path / "django_ciam_otp" / "email"
        folder.mkdir(parents=True)
        (folder / "subject.txt").write_text("Acme code\n{{ code }}\n")
        (folder / "message.txt").write_text("Code: {{ code }} ({{ validity_minutes }} min) & more")
        (folder / "message.html").write_text("<p>Acme {{ code }} for {{ usage_display }}</p>")
        settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

        EmailBackend().send(make_message())

        (email,) = mailoutbox
        assert email.subject == "Acme code 482915"  # newlines folded: no header injection
        assert email.body == "Code: 482915 (5 min) & more"
        assert html_of(email) == "<p>Acme 482915 for Log in</p>"

    def test_template_for_one_usage(
        self, mailoutbox: list[Any], settings: Any, tmp_path: Path
    ) -> None:
        folder = tmp_path / "django_ciam_otp" / "email"
        folder.mkdir(parents=True)
        (folder / "signup_subject.txt").write_text("Welcome to Acme")
        settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

        backend = EmailBackend()
        backend.send(make_message(usage="signup"))
        backend.send(make_message(usage="login"))

        assert [e.subject for e in mailoutbox] == [
            "Welcome to Acme",
            "Your verification code for Log in",
        ]

    def test_uses_the_configured_django_email_backend(
        self, raising: type[RaisingEmailBackend], mailoutbox: list[Any]
    ) -> None:
        assert EmailBackend().send(make_message())
        assert mailoutbox == []  # went to RaisingEmailBackend, not locmem

    def test_email_backend_option(self, mailoutbox: list[Any], settings: Any) -> None:
        settings.EMAIL_BACKEND = RAISING
        EmailBackend(email_backend="django.core.mail.backends.locmem.EmailBackend").send(
            make_message()
        )
        assert len(mailoutbox) == 1

    @pytest.mark.parametrize(
        ("error", "reason", "provider_code"),
        [
            (
                smtplib.SMTPRecipientsRefused({ADDRESS: (550, b"5.1.1 User unknown")}),
                "recipient refused by mail server (550)",
                "550",
            ),
            (
                smtplib.SMTPSenderRefused(553, b"5.7.1 Sender not allowed", "x@example.com"),
                "sender refused (553)",
                "553",
            ),
            (
                smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam"),
                "SMTPDataError (554)",
                "554",
            ),
            (
                smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"),
                "mail server rejected the credentials (535)",
                "535",
            ),
            (
                smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server."),
                "mail server does not support a required feature: "
                "SMTP AUTH extension not supported by server.",
                None,
            ),
            (
                ValueError("Header values can't contain newlines"),
                "message could not be built (ValueError)",
                None,
            ),
        ],
    )
    def test_permanent_errors(
        self,
        raising: type[RaisingEmailBackend],
        error: BaseException,
        reason: str,
        provider_code: str | None,
    ) -> None:
        raising.error = error
        with pytest.raises(PermanentDeliveryError) as info:
            EmailBackend().send(make_message())
        assert info.value.reason == reason
        assert info.value.provider_code == provider_code
        assert info.value.__cause__ is error

    @pytest.mark.parametrize(
        ("error", "reason"),
        [
            (
                smtplib.SMTPRecipientsRefused({ADDRESS: (450, b"4.2.0 Greylisted, try later")}),
                "recipient temporarily refused by mail server (450)",
            ),
            (
                smtplib.SMTPSenderRefused(451, b"4.3.0 Try again later", "x@example.com"),
                "sender refused (451)",
            ),
            (smtplib.SMTPDataError(421, b"4.7.0 Too many messages"), "SMTPDataError (421)"),
            (smtplib.SMTPConnectError(421, b"Service not available"), "SMTPConnectError (421)"),
            (
                smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
                "could not reach the mail server (SMTPServerDisconnected)",
            ),
            (
                ConnectionRefusedError(111, "Connection refused"),
                "could not reach the mail server (ConnectionRefusedError)",
            ),
            (TimeoutError("timed out"), "could not reach the mail server (TimeoutError)"),
            (
                socket.gaierror(-2, "Name or service not known"),
                "could not reach the mail server (gaierror)",
            ),
            (
                smtplib.SMTPException("something odd"),
                "could not reach the mail server (SMTPException)",
            ),
            (RuntimeError("provider SDK blew up"), "email backend failed (RuntimeError)"),
        ],
    )
    def test_transient_errors(
        self, raising: type[RaisingEmailBackend], error: BaseException, reason: str
    ) -> None:
        raising.error = error
        with pytest.raises(TransientDeliveryError) as info:
            EmailBackend().send(make_message())
        assert info.value.reason == reason
        assert info.value.__cause__ is error

    def test_mixed_recipient_refusals_are_transient(
        self, raising: type[RaisingEmailBackend]
    ) -> None:
        raising.error = smtplib.SMTPRecipientsRefused(
            {ADDRESS: (550, b"unknown"), "b@example.com": (452, b"mailbox full")}
        )
        with pytest.raises(TransientDeliveryError):
            EmailBackend().send(make_message())

    def test_nothing_sent_is_transient(self, raising: type[RaisingEmailBackend]) -> None:
        raising.result = 0
        with pytest.raises(TransientDeliveryError, match="nothing was sent"):
            EmailBackend().send(make_message())

    def test_error_reasons_never_contain_the_code(self, raising: type[RaisingEmailBackend]) -> None:
        raising.error = smtplib.SMTPDataError(554, b"rejected: 482915 looks like spam")
        with pytest.raises(PermanentDeliveryError) as info:
            EmailBackend().send(make_message(code="482915"))
        assert "482915" not in info.value.reason
