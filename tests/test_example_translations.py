"""Every page of the example project in Simplified Chinese: no English left on it.

Each page state a person can reach (the forms, their errors, a used-up code,
the messages after each step) is rendered in zh-Hans, and its visible text —
text nodes and the attributes people see or hear (``aria-label``,
``placeholder``, the labels demo.js puts on buttons) — must hold no English
word, whether it comes from the demo's catalogue or from Django's. The
catalogue itself must be complete and its compiled ``.mo`` current.
"""

from __future__ import annotations

import ast
import datetime as dt
import gettext
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from django_ciam_otp.backends.sms import locmem
from example_project.demo.models import Profile
from tests.conftest import use_example_project

pytestmark = pytest.mark.django_db

CATALOGUE = Path(__file__).resolve().parents[1] / "example_project/demo/locale/zh_Hans/LC_MESSAGES"
PASSWORD = "correct-horse-battery"
PHONE = "+8613612345678"
#: Words that are the same in every language: names, the addresses typed in the tests.
NOT_ENGLISH = {"CIAM", "OTP", "django", "ciam", "otp", "English", "example", "com", "name", "alice"}
#: Attributes whose text a person sees or hears.
SHOWN_ATTRIBUTES = {
    "aria-label",
    "placeholder",
    "title",
    "alt",
    "data-busy",
    "data-ready-label",
    "data-waiting-label",
}


class VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self.hidden_depth += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self.hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(data)


def english_words(page: str) -> set[str]:
    parser = VisibleText()
    parser.feed(page)
    text = re.sub(r"\{\w+\}", "", " ".join(parser.parts))  # demo.js's {time} placeholder
    return {w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in NOT_ENGLISH}


@pytest.fixture
def visitor(settings: Any, django_capture_on_commit_callbacks: Any) -> Any:
    use_example_project(settings, load_data=False)
    # The example project's own validator, so its message is on the page too.
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
    ]
    settings.DEMO_PASSWORD_LOGIN_RATE_LIMITS = {"IP": [], "ACCOUNT": ["2/m"]}
    call_command("load_demo_data", stdout=io.StringIO())

    class Visitor:
        def __init__(self) -> None:
            self.client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
            self.pages: dict[str, str] = {}

        def post(self, url: str, data: dict[str, str]) -> Any:
            with django_capture_on_commit_callbacks(execute=True):
                return self.client.post(url, data)

        def see(self, name: str, url: str) -> str:
            response = self.client.get(url)
            assert response.status_code == 200, (name, url, response.status_code)
            page = response.content.decode()
            assert '<html lang="zh-hans">' in page, name
            self.pages[name] = page
            return page

        def submit(self, name: str, url: str, data: dict[str, str]) -> str:
            response = self.post(url, data)
            assert response.status_code == 302, (name, response.status_code)
            return self.see(name, response["Location"])

    return Visitor()


def email_code() -> str:
    match = re.search(r"\b(\d{6})\b", mail.outbox[-1].body)
    assert match
    return match.group(1)


def visit_every_page(v: Any) -> None:
    """Walk every flow in zh-Hans, keeping each page state a person can see."""
    start = timezone.now()
    v.see("home", "/")
    v.see("signup", "/signup/")
    v.submit("signup: malformed", "/signup/", {"recipient": "136"})
    v.submit("signup: required", "/signup/", {"recipient": ""})
    with time_machine.travel(start, tick=False):
        v.post("/signup/", {"recipient": "alice@example.com"})
        v.see("signup code", "/signup/code/")
        v.submit("signup code: malformed", "/signup/code/", {"code": "12"})
        v.submit("signup code: wrong", "/signup/code/", {"code": "000000"})
        v.submit("signup code: resend refused", "/signup/code/", {"resend": "1"})
        mine, v.client = v.client, Client(HTTP_ACCEPT_LANGUAGE="zh-hans")  # another browser
        v.submit("signup: rate limited", "/signup/", {"recipient": "alice@example.com"})
        v.client = mine
        for n in range(1, 5):
            v.post("/signup/code/", {"code": f"00000{n}"})
        v.see("signup code: used up", "/signup/code/")
    with time_machine.travel(start + dt.timedelta(seconds=31), tick=False):
        v.submit("signup code: resent", "/signup/code/", {"resend": "1"})
        v.post("/signup/code/", {"code": email_code()})
        v.see("signup password", "/signup/password/")
        v.submit(
            "signup password: mismatch",
            "/signup/password/",
            {"new_password1": "a", "new_password2": "b"},
        )
        v.submit(
            "signup password: too short",
            "/signup/password/",
            {"new_password1": "abc", "new_password2": "abc"},
        )
        v.submit(
            "account: welcome",
            "/signup/password/",
            {"new_password1": PASSWORD, "new_password2": PASSWORD},
        )
        v.see("change email", "/account/email/")
        v.submit("change email: own", "/account/email/", {"recipient": "alice@example.com"})
        v.see("change phone", "/account/phone/")
        v.post("/account/phone/", {"recipient": "13612345678"})
        v.see("change phone code", "/account/phone/code/")
        v.submit("account: phone changed", "/account/phone/code/", {"code": locmem.outbox[-1].code})
        v.see("home: logged in", "/")
        v.post("/logout/", {})
        v.see("login", "/login/")
        v.submit("login: wrong", "/login/", {"login": "alice@example.com", "password": "x"})
        v.post("/login/", {"login": "alice@example.com", "password": "x"})
        v.submit("login: throttled", "/login/", {"login": "alice@example.com", "password": "x"})
        v.see("login code", "/login/code/")
        v.post("/login/code/", {"recipient": "139 1234 5678"})
        v.see("login code verify", "/login/code/verify/")
        v.submit(
            "login code: no account yet", "/login/code/verify/", {"code": locmem.outbox[-1].code}
        )
        v.see("reset", "/password/reset/")
        v.post("/password/reset/", {"recipient": "alice@example.com"})
        v.see("reset code", "/password/reset/code/")
        v.post("/password/reset/code/", {"code": email_code()})
        v.see("reset password", "/password/reset/new/")
        v.submit(
            "login: password changed",
            "/password/reset/new/",
            {"new_password1": PASSWORD + "2", "new_password2": PASSWORD + "2"},
        )


def test_every_page_state_is_in_simplified_chinese(visitor: Any) -> None:
    visit_every_page(visitor)
    assert get_user_model().objects.count() == 1
    assert Profile.objects.get().phone_number == PHONE
    left = {name: words for name, page in visitor.pages.items() if (words := english_words(page))}
    assert left == {}, left
    assert len(visitor.pages) >= 30


def test_the_pages_say_log_out_as_the_demo_does(visitor: Any) -> None:
    """The admin's catalogue (注销) must not win over the demo's word for leaving the site."""
    user = get_user_model().objects.create_user("alice@example.com", password=PASSWORD)
    visitor.client.force_login(user)
    page = visitor.see("account", "/account/")
    assert "退出登录" in page and "注销" not in page


def po_entries() -> list[tuple[str | None, str, str | None, str]]:
    """``(context, msgid, msgid_plural, msgstr)`` of each entry of the demo's catalogue.

    A fuzzy entry's msgstr counts as empty (gettext ignores it).
    """
    entries = []
    for block in (CATALOGUE / "django.po").read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[0\])?) (".*")$', line)
            if match:
                current = match.group(1)
                fields[current] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and current:
                fields[current] += ast.literal_eval(line)
        if fields.get("msgid"):
            msgstr = fields.get("msgstr", fields.get("msgstr[0]", ""))
            if "#, fuzzy" in block or re.search(r"^#,.*\bfuzzy\b", block, re.M):
                msgstr = ""
            entries.append(
                (fields.get("msgctxt"), fields["msgid"], fields.get("msgid_plural"), msgstr)
            )
    return entries


def test_the_catalogue_is_complete_and_compiled() -> None:
    entries = po_entries()
    assert len(entries) > 100
    assert [msgid for _ctx, msgid, _plural, msgstr in entries if not msgstr] == []
    with (CATALOGUE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for ctx, msgid, plural, msgstr in entries:
        if plural:
            found = compiled.ngettext(msgid, plural, 1)
        else:
            found = compiled.pgettext(ctx, msgid) if ctx else compiled.gettext(msgid)
        assert found == msgstr, f"django.mo is older than django.po: run msgfmt ({msgid!r})"
