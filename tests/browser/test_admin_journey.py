"""An operator's first session in the admin, in a real headless Chromium.

Log in, create an SMS auth source of 8-digit codes valid 120 seconds, create an
API client and copy its one-time secret off the page, give the client an SMS
quota, then use exactly those credentials against ``POST /otp/send`` and
``POST /otp/verify`` on the live server and read the 8-digit code from the
locmem SMS outbox. The token log shows the send without the code, the secret
or the phone number. Each admin page leaves a screenshot under
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_ciam_otp.backends.sms import locmem
from django_ciam_otp.models import AuthSource, OTPClient, OTPToken, Quota
from tests.conftest import basic_auth

from .conftest import wait_for_message
from .pages import Page

pytestmark = pytest.mark.browser

ADMIN_USER = "operator"
ADMIN_PASSWORD = "operator-passphrase"
SOURCE_ID = "SHOP_SMS_8"
PHONE = "+86 13612345678"
MASKED_PHONE = "+86136****5678"
ADMIN = "/admin/ciam_otp"


class AdminPage(Page):
    """``Page`` for the Django admin: choose in selects, wait for the success message."""

    def choose(self, css: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(css)).select_by_value(value)

    def success(self) -> str:
        return self.text("ul.messagelist li.success")

    def source(self) -> str:
        return self.browser.page_source


def api_post(base_url: str, path: str, body: dict[str, Any], authorization: str) -> Any:
    """POST JSON as an API caller would; returns ``(status, parsed body)``."""
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": authorization},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_operator_sets_up_a_client_whose_credentials_send_an_8_digit_code(
    browser: Any, live_server: Any, screenshot: Any
) -> None:
    base_url = live_server.url
    page = AdminPage(browser, base_url)
    get_user_model().objects.create_superuser(ADMIN_USER, "ops@example.com", ADMIN_PASSWORD)
    browser.set_window_size(1440, 900)  # the changelists' columns and filters side by side
    # Let the copy button use the asynchronous Clipboard API, and the test read it back.
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": base_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )

    # --- log in ------------------------------------------------------------------------
    page.open("/admin/")
    page.wait.until(lambda d: page.path().startswith("/admin/login/"))
    page.type("#id_username", ADMIN_USER)
    page.type("#id_password", ADMIN_PASSWORD)
    screenshot("admin-login")
    page.submit("#login-form input[type=submit]", to="/admin/")

    # --- the app's index: dashboard and models ------------------------------------------
    page.open(f"{ADMIN}/")
    assert page.find("#ciam-otp-dashboard")
    assert page.find("#ciam-otp-quotas")
    # The app index's body has Django's "dashboard" class, whose CSS once squeezed these
    # column headers to one letter per line: a header row stays a few lines tall at most.
    for table in ("#ciam-otp-traffic", "#ciam-otp-quotas"):
        header = page.find(f"{table} thead tr").size["height"]
        row = page.find(f"{table} tbody tr").size["height"]
        assert header < 3 * row, (table, header, row)
    screenshot("app-index-dashboard")

    # --- an SMS auth source of 8-digit codes valid 120 seconds --------------------------
    page.submit(f'a.addlink[href$="{ADMIN}/authsource/add/"]', to=f"{ADMIN}/authsource/add/")
    page.type("#id_id", SOURCE_ID)
    page.type("#id_name", "Shop log-in by SMS")
    page.choose("#id_channel", "sms")
    page.type("#id_code_length", "8")
    page.type("#id_code_validity", "120")
    screenshot("auth-source-form")
    page.submit("input[name=_save]", to=f"{ADMIN}/authsource/")
    assert SOURCE_ID in page.success()
    row = page.text("#result_list tbody tr")
    assert SOURCE_ID in row and "120 seconds" in row
    screenshot("auth-source-changelist")
    source = AuthSource.objects.get()
    assert (source.pk, source.channel, source.code_length, source.code_validity) == (
        SOURCE_ID,
        "sms",
        8,
        120,
    )

    # --- an API client: its secret is shown once, to copy --------------------------------
    page.open(f"{ADMIN}/otpclient/add/")
    page.type("#id_name", "Shop")
    generated_id = page.find("#id_client_id").get_attribute("value")
    assert generated_id
    screenshot("client-form")
    page.submit("input[name=_save]", to=f"{ADMIN}/otpclient/add/")
    assert "only time it is shown" in page.text("#ciam-otp-secret-warning")
    client_id = page.text("#ciam-otp-client-id")
    secret = page.text("#ciam-otp-client-secret")
    assert client_id == generated_id
    assert len(secret) >= 43
    copy = page.find("#ciam-otp-copy-secret")
    assert copy.text == "Copy"
    copy.click()
    page.wait.until(lambda d: copy.get_attribute("data-copied") is not None)
    assert (copy.get_attribute("data-copied"), copy.text) == ("true", "Copied")
    clipboard = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (error) => done('error: ' + error));"
    )
    assert clipboard == secret
    screenshot("client-secret-copied")
    client = OTPClient.objects.get()
    assert client.client_id == client_id and client.check_secret(clipboard)

    # Shown exactly once: the client's own page never shows it, not even on reload.
    page.submit(f'a[href$="{ADMIN}/otpclient/{client.pk}/change/"]')
    assert page.path() == f"{ADMIN}/otpclient/{client.pk}/change/"
    assert client_id in page.text("#content-main")
    for _visit in range(2):
        assert page.find("#ciam-otp-rotate-secret")
        assert secret not in page.source() and "ciam-otp-client-secret" not in page.source()
        browser.refresh()
    assert "No quota" in page.text(".field-quota_summary")
    screenshot("client-change-no-secret")

    # --- an SMS quota for the client, then a top-up --------------------------------------
    page.submit(".field-quota_summary a.addlink", to=f"{ADMIN}/quota/add/")
    assert page.find("#id_client").get_attribute("value") == str(client.pk)
    page.choose("#id_channel", "sms")
    page.type("#id_limit", "10")
    page.choose("#id_period", "daily")
    screenshot("quota-form")
    page.submit("input[name=_save]", to=f"{ADMIN}/quota/")
    quota = Quota.objects.get(client=client)
    page.submit(f'#result_list a[href$="{ADMIN}/quota/{quota.pk}/change/"]')
    page.submit("#ciam-otp-top-up", to=f"{ADMIN}/quota/{quota.pk}/top-up/")
    page.type("#id_amount", "5")
    screenshot("quota-top-up")
    page.submit("#ciam-otp-confirm", to=f"{ADMIN}/quota/")
    assert "Added 5 messages" in page.success()
    row = page.text("#result_list tbody tr")
    assert "Shop" in row and "SMS" in row and "15" in row
    screenshot("quota-changelist")
    quota.refresh_from_db()
    assert (quota.channel, quota.limit, quota.period) == ("sms", 15, "daily")

    # --- the copied credentials work against the API -------------------------------------
    authorization = basic_auth(client_id, clipboard)
    status, sent = api_post(
        base_url,
        "/otp/send",
        {"usage": "login", "phone_number": PHONE, "auth_source_id": SOURCE_ID},
        authorization,
    )
    assert status == 200, sent
    otp_token = sent["otp_token"]
    sms = wait_for_message(locmem.outbox, 1)
    assert sms.phone_number == "+8613612345678" and sms.usage == "login"
    match = re.search(r"\b(\d+)\b", sms.text)
    assert match, sms.text
    code = match.group(1)
    assert re.fullmatch(r"\d{8}", code) and code == sms.code, sms.text
    assert "2 minutes" in sms.text  # the auth source's 120 seconds
    status, verified = api_post(
        base_url,
        "/otp/verify",
        {"otp_token": otp_token, "otp": code, "phone_number": PHONE, "usage": "login"},
        authorization,
    )
    assert status == 200 and verified["verified"] is True, verified

    # --- the lists: clients, auth sources, and the token log without secrets --------------
    page.open(f"{ADMIN}/otpclient/")
    assert client_id in page.text("#result_list")
    screenshot("client-changelist")
    page.open(f"{ADMIN}/authsource/")
    assert SOURCE_ID in page.text("#result_list")
    screenshot("auth-source-changelist-after-send")
    page.open(f"{ADMIN}/otptoken/")
    row = page.text("#result_list tbody tr")
    assert MASKED_PHONE in row and SOURCE_ID in row and "Shop" in row
    html = page.source()
    for hidden in (code, clipboard, otp_token, "13612345678", "136 1234 5678"):
        assert hidden not in html, hidden
    screenshot("token-log")
    token = OTPToken.objects.get()
    assert (token.client_id, token.auth_source_id, token.code_length) == (client.pk, SOURCE_ID, 8)
    quota.refresh_from_db()
    assert quota.current_used == 1
