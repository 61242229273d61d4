"""An end user's whole journey through the example project, in a real headless Chromium.

On a desktop, in English: sign up by email code (after a mistyped address),
add a mobile number, log out (Back shows nothing of the account), log in by
SMS code after a wrong one (Back shows no code), reset the password by email
code, log in with the new password. Codes are read from the locmem outboxes;
axe-core audits every page state and each leaves a screenshot under
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from django_ciam_otp.backends.sms import locmem
from example_project.demo.models import Profile

from .conftest import email_code, wait_for_message
from .pages import Page, wrong

pytestmark = pytest.mark.browser

EMAIL = "alice@example.com"
PHONE = "13612345678"
FIRST_PASSWORD = "first-secret-passphrase"
NEW_PASSWORD = "second-secret-passphrase"
#: "Send a new code" before the wait is over, as a page without JavaScript can.
EARLY_RESEND = """
const form = document.querySelector("form.resend");
const resend = document.createElement("input");
Object.assign(resend, {type: "hidden", name: "resend", value: "1"});
form.appendChild(resend);
form.submit();
"""


def counting_down(page: Page) -> Any:
    """The "Send a new code" button, waiting ``retry_after`` (at least 5 seconds of it).

    The per-address window is django-ratelimit's, staggered per address: a code
    sent at its very end leaves a wait of a second or two. Then the wait is sat
    out and a new code asked for, which starts a whole window.
    """
    resend = page.find("#resend")
    # the countdown script makes "Send a new code" inert until retry_after has passed
    page.wait.until(lambda d: resend.get_attribute("aria-disabled") == "true")
    if seconds_in(resend.text) < 5:
        page.wait.until(lambda d: resend.get_attribute("aria-disabled") is None)
        page.submit("#resend", to="/signup/code/")
        resend = page.find("#resend")
        page.wait.until(lambda d: resend.get_attribute("aria-disabled") == "true")
    assert re.fullmatch(r"Send a new code in \d+ seconds", resend.text), resend.text
    return resend


def seconds_in(text: str) -> int:
    match = re.search(r"(\d+) seconds?", text)
    assert match, text
    return int(match.group(1))


def test_sign_up_log_in_by_sms_and_reset_the_password(
    chromium: Any, demo_site: str, audit: Any
) -> None:
    browser = chromium(device="desktop", language="en")
    page = Page(browser, demo_site, audit=audit(browser))

    # --- sign up with an email code, after a mistyped address ------------------------
    page.open("/")
    assert "Welcome" in page.text()
    page.audit("home")
    page.submit("#signup-link", to="/signup/")
    page.type("#id_recipient", EMAIL)
    page.audit("signup")
    page.type("#id_recipient", "alice@")
    page.submit("#send", to="/signup/")  # redirected back, with the error
    assert page.errors() == ["Enter a valid email address, for example name@example.com."]
    assert page.title().startswith("Error: Create an account")
    assert page.focused() == "id_recipient"  # a screen reader reads the field and its error
    assert page.find("#id_recipient").get_attribute("aria-describedby") == "id_recipient_error"
    page.audit("signup-error")
    page.type("#id_recipient", EMAIL)
    page.submit("#send", to="/signup/code/")
    assert "We sent a code to a***@example.com." in page.text()
    assert page.text("#id_code_helptext") == "6-digit code, valid for 1 minute."
    assert page.title().startswith("Enter the code – Create an account")
    resend = counting_down(page)
    resend.click()  # focusable while it waits (a screen reader hears the wait), but inert
    time.sleep(0.3)  # a submit would have left the page by now
    sent = len(mail.outbox)
    assert page.find("#resend") == resend
    page.audit("signup-code-sent")
    # an early "Send a new code" (as without JavaScript): refused, with the wait left,
    # counting down with the button's, never a frozen number
    page.navigates(lambda: browser.execute_script(EARLY_RESEND), to="/signup/code/")
    assert len(mail.outbox) == sent
    banner, resend = page.find("#resend-error"), page.find("#resend")
    assert page.focused() == "resend-error"
    page.wait.until(lambda d: resend.get_attribute("aria-disabled") == "true")
    first = seconds_in(banner.text)
    assert abs(first - seconds_in(resend.text)) <= 1
    page.wait.until(lambda d: seconds_in(banner.text) < first, "the wait counts down")
    assert abs(seconds_in(banner.text) - seconds_in(resend.text)) <= 1
    page.audit("signup-resend-refused")
    page.enter_code(email_code(sent), to="/signup/password/")
    assert page.title().startswith("Choose a password – Create an account")
    page.type("#id_new_password1", FIRST_PASSWORD)
    page.type("#id_new_password2", FIRST_PASSWORD + "x")
    page.submit("#save-password", to="/signup/password/")
    assert page.errors() == ["The two password fields didn’t match."]
    assert page.focused() == "id_new_password2"
    page.audit("signup-password-error")
    page.type("#id_new_password1", FIRST_PASSWORD)
    page.type("#id_new_password2", FIRST_PASSWORD)
    page.submit("#save-password", to="/account/")
    assert "Welcome! Your account is ready." in page.text()
    assert page.text("#account-email") == EMAIL
    page.audit("signed-up")
    page.open("/")
    page.audit("home-logged-in")
    page.open("/account/email/")
    assert page.find("#id_recipient").get_attribute("type") == "email"
    page.audit("change-email")
    page.open("/account/")

    # --- add a mobile number (update_userinfo) so the account can log in by SMS ----
    page.submit("#change-phone", to="/account/phone/")
    assert page.find("#id_recipient").get_attribute("type") == "tel"
    page.audit("add-phone")
    page.type("#id_recipient", PHONE)
    page.submit("#send", to="/account/phone/code/")
    assert "+86136****5678" in page.text()
    page.audit("phone-code")
    page.enter_code(wait_for_message(locmem.outbox, 1).code, to="/account/")
    assert page.text("#account-phone") == "+8613612345678"
    page.audit("phone-added")

    # --- log out: Back shows nothing of the account ----------------------------------
    page.submit("#logout", to="/")
    page.navigates(browser.back)
    assert page.path().startswith("/login/?next=/account/")
    assert EMAIL not in page.source() and "8613612345678" not in page.source()

    # --- log in with an SMS code, after a wrong one -------------------------------------
    page.open("/login/")
    page.submit("#login-code-link", to="/login/code/")
    page.type("#id_recipient", "136 1234 5678")
    page.audit("login-by-sms")
    page.submit("#send", to="/login/code/verify/")
    sms = wait_for_message(locmem.outbox, 2)
    assert sms.usage == "login" and sms.phone_number == "+8613612345678"
    page.enter_code(wrong(sms.code), to="/login/code/verify/")
    assert page.errors() == ["That code is not right. You can try 4 more times."]
    assert page.title().startswith("Error: Enter the code – Log in with a code")
    assert page.focused() == "id_code"  # cleared and ready for the right one
    assert page.find("#id_code").get_attribute("value") == ""
    page.audit("login-wrong-code")
    page.enter_code(sms.code, to="/account/")
    assert page.text("#account-email") == EMAIL
    page.audit("logged-in-by-sms")
    # Back: the code page is gone with its code; nothing shows it again
    page.navigates(browser.back)
    assert page.path() == "/login/code/"
    assert sms.code not in page.source()

    # --- forgot the password: reset it with an email code --------------------------------
    page.submit("#logout", to="/")
    page.open("/login/")
    page.submit("#reset-link", to="/password/reset/")
    page.type("#id_recipient", EMAIL)
    page.audit("reset")
    page.submit("#send", to="/password/reset/code/")
    assert "If this belongs to an account, we sent a code to a***@example.com." in page.text()
    page.audit("reset-code")
    page.enter_code(email_code(sent + 1), to="/password/reset/new/")
    page.type("#id_new_password1", NEW_PASSWORD)
    page.type("#id_new_password2", NEW_PASSWORD)
    page.audit("reset-new-password")
    page.submit("#save-password", to="/login/")
    assert "Log in with your new password." in page.text()
    page.audit("password-changed")

    # --- the old password no longer works; the new one does ----------------------------
    page.type("#id_login", EMAIL)
    page.type("#id_password", FIRST_PASSWORD)
    page.submit("#login", to="/login/")
    assert page.errors() == ["Wrong email address, mobile number or password."]
    assert page.focused() == "form-errors"
    assert page.find("#id_login").get_attribute("value") == EMAIL
    page.audit("login-error")
    page.type("#id_password", NEW_PASSWORD)
    page.submit("#login", to="/account/")
    assert page.text("#account-phone") == "+8613612345678"

    user = get_user_model().objects.get()
    assert user.check_password(NEW_PASSWORD)
    assert Profile.objects.get(user=user).phone_number == "+8613612345678"
    assert [m.to for m in mail.outbox] == [[EMAIL]] * (sent + 1)


def test_pages_switch_to_simplified_chinese(chromium: Any, demo_site: str, audit: Any) -> None:
    browser = chromium(device="desktop", language="en")
    page = Page(browser, demo_site, audit=audit(browser))
    page.open("/signup/")
    page.submit('button[name="language"][value="zh-hans"]', to="/signup/")
    assert "创建账号" in page.text()
    page.type("#id_recipient", "136")
    page.submit("#send", to="/signup/")
    assert page.errors() == ["请输入中国大陆手机号码，例如 136 1234 5678。"]
    assert page.title().startswith("错误：创建账号")
    page.audit("signup-zh-hans")
