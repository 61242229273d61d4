"""Signing up by mobile number on a phone, in Simplified Chinese: the code box.

The box is as long as the auth source's code and says so ("6 位数字验证码，
1 分钟内有效"); it takes full-width digits and dashes, submits itself when
the code is complete, clears and keeps the focus after a wrong code, hides
when the code is used up (then "Send a new code" is the main button, counting
down ``retry_after``), and takes a whole pasted SMS — WebOTP line included.
A verified number with no account goes on to choose a password. axe-core
audits every state; each leaves a screenshot.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_ciam_otp.backends.sms import locmem
from example_project.demo.models import Profile

from .conftest import wait_for_message
from .pages import Page, fullwidth, wrong

pytestmark = pytest.mark.browser

PASSWORD = "一个足够长的密码-passphrase"


def test_the_code_box_on_a_phone_in_chinese(
    chromium: Any, demo_site: str, audit: Any, settings: Any
) -> None:
    # A short resend wait keeps the test quick; the WebOTP line ends each SMS.
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": ["1/4s"],
        "SMS_WEBOTP_DOMAIN": "localhost",
    }
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
    ]
    browser = chromium(device="phone", language="zh-hans")
    page = Page(browser, demo_site, audit=audit(browser))

    page.open("/login/code/")
    assert page.text("h1") == "验证码登录"
    page.audit("login-code")
    page.type("#id_recipient", "136 1234 5678")
    page.submit("#send", to="/login/code/verify/")
    sms = wait_for_message(locmem.outbox, 1)
    box = page.find("#id_code")
    assert page.text("#id_code_helptext") == "6 位数字验证码，1 分钟内有效。"
    assert box.get_attribute("inputmode") == "numeric"
    assert box.get_attribute("autocomplete") == "one-time-code"
    assert box.get_attribute("data-code-length") == "6"
    assert page.focused() == "id_code"
    assert page.title().startswith("输入验证码 – 验证码登录")
    page.audit("code-sent")

    # full-width digits with a dash: normalised, submitted when complete, one try spent
    typed = wrong(sms.code)
    page.enter_code(fullwidth(f"{typed[:3]}-{typed[3:]}"), to="/login/code/verify/")
    assert page.errors() == ["验证码不正确。您还可以尝试 4 次。"]
    assert page.title().startswith("错误：输入验证码")
    assert page.focused() == "id_code"
    assert page.find("#id_code").get_attribute("value") == ""
    page.audit("wrong-code")

    # the code used up: the box goes, "Send a new code" becomes the main button
    for n in range(2, 6):
        page.enter_code(wrong(sms.code, n), to="/login/code/verify/")
    assert page.all("#id_code") == []
    assert page.text("#code-dead") == "验证码不正确，请重新获取验证码。"
    assert page.focused() == "code-dead"  # the reason is read first
    resend = page.find("#resend")
    assert "button" in resend.get_attribute("class").split()
    page.audit("code-used-up")
    page.wait.until(
        lambda d: resend.get_attribute("aria-disabled") is None, "the resend countdown ends"
    )
    assert resend.text == "重新发送验证码"
    page.submit("#resend", to="/login/code/verify/")
    assert "新的验证码已发送至 +86136****5678。" in page.text()
    sms = wait_for_message(locmem.outbox, 2)
    assert sms.text.splitlines()[-1] == f"@localhost #{sms.code}"
    page.audit("code-resent")

    # a whole pasted SMS: the code is taken out of it and sent
    page.paste("#id_code", sms.text, to="/signup/password/")

    # no account uses the number: it is verified, so sign-up goes on without a new SMS
    assert "该手机号码尚未注册账号。设置密码即可创建账号。" in page.text()
    assert page.title().startswith("设置密码 – 创建账号")
    page.audit("choose-password")
    page.type("#id_new_password1", "short")
    page.type("#id_new_password2", "short")
    page.submit("#save-password", to="/signup/password/")
    assert page.errors() == ["密码太短，至少需要包含 8 个字符。"]
    page.audit("password-too-short")
    page.type("#id_new_password1", PASSWORD)
    page.type("#id_new_password2", PASSWORD)
    page.submit("#save-password", to="/account/")
    assert "欢迎！您的账号已创建。" in page.text()
    assert page.text("#account-phone") == "+8613612345678"
    assert page.text("#logout") == "退出登录"
    page.audit("account")

    assert len(locmem.outbox) == 2
    assert Profile.objects.get().user == get_user_model().objects.get()
