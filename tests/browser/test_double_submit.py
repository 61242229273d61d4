"""Double clicks, double submits and Back: on a desktop in English, on a phone in Chinese.

A submit button disables itself and says what it is doing, so a double
click sends one form. When two submits get through anyway (two ``fetch()``
posts at the same moment, with the browser's cookies), the person still ends
up where one submit takes them: one SMS, the next step, one account, logged
in. Back never shows a form resubmission prompt (every POST is answered with
a redirect) nor anything of an account after logging out (no-store).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_ciam_otp.backends.sms import locmem

from .conftest import wait_for_message
from .pages import Page

pytestmark = pytest.mark.browser

PHONE = "13612345678"
OTHER_PHONE = "13712345678"
PASSWORD = "correct-horse-battery-staple"
WORDS = {
    "en": {
        "sending": "Sending the code…",
        "wrong": "Wrong email address, mobile number or password.",
    },
    "zh-hans": {"sending": "正在发送验证码…", "wrong": "邮箱地址、手机号码或密码错误。"},
}


@pytest.mark.parametrize(
    ("device", "language"),
    [("desktop", "en"), ("phone", "zh-hans")],
    ids=["desktop-en", "phone-zh"],
)
def test_double_submits_and_back(
    chromium: Any, demo_site: str, audit: Any, device: str, language: str
) -> None:
    browser = chromium(device=device, language=language)
    page = Page(browser, demo_site, audit=audit(browser))
    words = WORDS[language]

    # --- the button says what it is doing, and takes no second click --------------------
    page.open("/signup/")
    page.type("#id_recipient", PHONE)
    # Stop the navigation after the page's own submit handler ran, to see its state,
    # and count the submits it let through.
    browser.execute_script(
        """window.submits = 0;
        window.addEventListener("submit", (e) => {
          if (!e.defaultPrevented) window.submits += 1;
          e.preventDefault();
        });"""
    )
    page.find("#send").click()
    send = page.find("#send")
    page.find("#id_recipient").send_keys("\n")  # Enter: a second submit, dropped
    page.wait.until(lambda d: send.get_attribute("disabled") is not None)
    assert browser.execute_script("return window.submits") == 1
    assert send.text == words["sending"]
    assert send.get_attribute("aria-disabled") == "true"
    assert (
        browser.find_element(page.by.ID, "busy-status").get_attribute("textContent")
        == (words["sending"])
    )
    page.audit("sending")
    page.navigates(browser.refresh)
    page.type("#id_recipient", PHONE)
    page.navigates(
        lambda: page.actions().double_click(page.find("#send")).perform(), to="/signup/code/"
    )
    assert page.errors() == []
    assert len(locmem.outbox) == 1

    # --- another number sent twice at once, past that guard: one SMS, the code page ------
    page.open("/signup/")
    page.type("#id_recipient", OTHER_PHONE)
    assert page.double_submit("form[data-busy]") == [(200, "/signup/code/")] * 2
    page.open("/signup/code/")
    assert page.errors() == [] and len(locmem.outbox) == 2
    code = wait_for_message(locmem.outbox, 2).code

    # --- "Continue" twice at once with the right code: on to the next step, once -----------
    assert page.double_submit("#code-form", code=code) == [(200, "/signup/password/")] * 2
    page.navigates(lambda: page.open("/signup/password/"), to="/signup/password/")
    page.audit("password-after-double-continue")

    # --- "Save password" twice at once: one account, logged in --------------------------------
    page.type("#id_new_password1", PASSWORD)
    page.type("#id_new_password2", PASSWORD)
    assert page.double_submit("form[data-busy]") == [(200, "/account/")] * 2
    page.navigates(lambda: page.open("/account/"), to="/account/")
    assert page.text("#account-phone") == "+8613712345678"
    assert get_user_model().objects.count() == 1
    page.audit("account-after-double-save")

    # --- Back after logging out shows nothing of the account -----------------------------
    page.submit("#logout", to="/")
    page.navigates(browser.back)
    assert page.path().startswith("/login/?next=/account/")
    assert "8613712345678" not in page.source()

    # --- a failed submit, then a good one: Back reloads the form, no resubmission prompt ------
    page.open("/login/")
    page.type("#id_login", OTHER_PHONE)
    page.type("#id_password", "not the password")
    page.submit("#login", to="/login/")
    assert page.errors() == [words["wrong"]]
    page.audit("login-error")
    page.type("#id_password", PASSWORD)
    page.submit("#login", to="/account/")
    page.navigates(browser.back, to="/login/")
    assert page.find("#id_login")  # the page itself, not the browser's "Confirm resubmission"
    assert page.errors() == []  # the error was shown once
