"""An end user's whole journey through the example project, in a real headless Chromium.

Sign up by email code, add a mobile number, log out, log in by SMS code,
reset the password by email code, log in with the new password. Codes are
read from the locmem outboxes; each step leaves a screenshot under
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from django_ciam_otp.backends.sms import locmem
from example_project.demo.models import Profile

from .conftest import WAIT, email_code, wait_for_message

pytestmark = pytest.mark.browser

EMAIL = "alice@example.com"
PHONE = "13612345678"
FIRST_PASSWORD = "first-secret-passphrase"
NEW_PASSWORD = "second-secret-passphrase"


class Page:
    """Small helpers over the WebDriver: type, click, wait for the next page."""

    def __init__(self, browser: Any, base_url: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser = browser
        self.base_url = base_url
        self.by = By
        self.ec = ec
        self.wait = WebDriverWait(browser, WAIT)

    def open(self, path: str) -> None:
        self.browser.get(self.base_url + path)

    def find(self, css: str) -> Any:
        return self.wait.until(self.ec.visibility_of_element_located((self.by.CSS_SELECTOR, css)))

    def type(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def submit(self, css: str, *, to: str | None = None) -> None:
        """Click a submit button and wait until the next page (at path ``to``) has loaded."""
        old = self.find("html")
        self.find(css).click()
        self.wait.until(self.ec.staleness_of(old))
        if to is not None:
            self.wait.until(lambda d: d.current_url.split("?")[0] == self.base_url + to)
        self.find("main")

    def path(self) -> str:
        return self.browser.current_url.removeprefix(self.base_url)

    def text(self, css: str = "main") -> str:
        return self.find(css).text

    def errors(self) -> list[str]:
        return [e.text for e in self.browser.find_elements(self.by.CSS_SELECTOR, "p.error")]


def test_sign_up_log_in_by_sms_and_reset_the_password(
    browser: Any, demo_site: str, screenshot: Any
) -> None:
    page = Page(browser, demo_site)

    # --- sign up with an email code -----------------------------------------------
    page.open("/")
    assert "Welcome" in page.text()
    screenshot("home")
    page.submit("#signup-link", to="/signup/")
    page.type("#id_recipient", EMAIL)
    screenshot("signup-email")
    page.submit("#send", to="/signup/code/")
    assert "a***@example.com" in page.text()
    resend = page.find("#resend")
    # the countdown script disables "send a new code" until retry_after has passed
    page.wait.until(lambda d: not resend.is_enabled())
    assert "Send a new code in" in resend.text
    screenshot("signup-code-sent")
    page.type("#id_code", email_code(1))
    page.submit("#verify", to="/signup/password/")
    page.type("#id_new_password1", FIRST_PASSWORD)
    page.type("#id_new_password2", FIRST_PASSWORD)
    screenshot("signup-password")
    page.submit("#save-password", to="/account/")
    assert "Welcome! Your account is ready." in page.text()
    assert page.text("#account-email") == EMAIL
    screenshot("signed-up")

    # --- add a mobile number (update_userinfo) so the account can log in by SMS ----
    page.submit("#change-phone", to="/account/phone/")
    page.type("#id_recipient", PHONE)
    page.submit("#send", to="/account/phone/code/")
    assert "+86136****5678" in page.text()
    page.type("#id_code", wait_for_message(locmem.outbox, 1).code)
    screenshot("phone-code")
    page.submit("#verify", to="/account/")
    assert page.text("#account-phone") == "+8613612345678"
    screenshot("phone-added")

    # --- log out, log in with an SMS code --------------------------------------------
    page.submit("#logout", to="/")
    assert page.find("#login-link")
    page.submit("#login-link", to="/login/")
    page.submit("#login-code-link", to="/login/code/")
    page.type("#id_recipient", "136 1234 5678")
    screenshot("login-by-sms")
    page.submit("#send", to="/login/code/verify/")
    sms = wait_for_message(locmem.outbox, 2)
    assert sms.usage == "login" and sms.phone_number == "+8613612345678"
    wrong = str((int(sms.code) + 1) % 10 ** len(sms.code)).zfill(len(sms.code))
    page.type("#id_code", wrong)
    page.submit("#verify", to="/login/code/verify/")
    assert page.errors() == ["That code is not right. You can try 4 more times."]
    screenshot("login-wrong-code")
    page.type("#id_code", sms.code)
    page.submit("#verify", to="/account/")
    assert page.text("#account-email") == EMAIL
    screenshot("logged-in-by-sms")

    # --- forgot the password: reset it with an email code --------------------------------
    page.submit("#logout", to="/")
    page.open("/login/")
    page.submit("#reset-link", to="/password/reset/")
    page.type("#id_recipient", EMAIL)
    screenshot("reset")
    page.submit("#send", to="/password/reset/code/")
    page.type("#id_code", email_code(2))
    page.submit("#verify", to="/password/reset/new/")
    page.type("#id_new_password1", NEW_PASSWORD)
    page.type("#id_new_password2", NEW_PASSWORD)
    screenshot("reset-new-password")
    page.submit("#save-password", to="/login/")
    assert "Log in with your new password." in page.text()
    screenshot("password-changed")

    # --- the old password no longer works; the new one does ----------------------------
    page.type("#id_login", EMAIL)
    page.type("#id_password", FIRST_PASSWORD)
    page.submit("#login", to="/login/")
    assert page.errors() == ["Wrong email address, mobile number or password."]
    page.type("#id_login", EMAIL)
    page.type("#id_password", NEW_PASSWORD)
    page.submit("#login", to="/account/")
    assert page.text("#account-phone") == "+8613612345678"
    screenshot("logged-in-with-new-password")

    user = get_user_model().objects.get()
    assert user.check_password(NEW_PASSWORD)
    assert Profile.objects.get(user=user).phone_number == "+8613612345678"
    assert [m.to for m in mail.outbox] == [[EMAIL], [EMAIL]]


def test_pages_switch_to_simplified_chinese(browser: Any, demo_site: str, screenshot: Any) -> None:
    page = Page(browser, demo_site)
    page.open("/signup/")
    page.submit('button[name="language"][value="zh-hans"]', to="/signup/")
    assert "创建账号" in page.text()
    page.type("#id_recipient", "136")
    page.submit("#send", to="/signup/")
    assert page.errors() == ["请输入中国大陆手机号码，例如 136 1234 5678。"]
    screenshot("signup-zh-hans")
