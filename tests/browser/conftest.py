"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium.

Nothing is downloaded: the driver and the browser are the system's, named
explicitly, so Selenium Manager never runs. When either is missing the tests
fail with the command that installs them; they are never skipped.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

CHROMIUM = Path(os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WAIT = 10  # seconds for a page or an element


def _slug(name: str) -> str:
    return re.sub(r"\W+", "-", name).strip("-")


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"Browser tests need Chromium and its driver; missing: {', '.join(missing)}. "
            "Install them with `apt-get install -y chromium chromium-driver` "
            "(.ci/run does this on CI).",
            pytrace=False,
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("Browser tests need Selenium: pip install -e '.[test]'", pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so ``browser`` can see that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh headless Chromium with its own profile, in English.

    When the test fails, the last page is kept as ``<test>-failed.png`` and
    ``.html`` beside the step screenshots.
    """
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--lang=en-US",
        "--window-size=1100,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            stem = SCREENSHOTS / f"{_slug(request.node.name)}-failed"
            driver.save_screenshot(f"{stem}.png")
            Path(f"{stem}.html").write_text(driver.page_source, encoding="utf-8")
    finally:
        driver.quit()


@pytest.fixture
def demo_site(settings: Any, live_server: Any) -> str:
    """The example project's pages on pytest-django's live server; returns its URL.

    The live server is a thread of this process, so settings overrides, the
    locmem SMS outbox and ``django.core.mail.outbox`` are shared with the test.
    """
    settings.ROOT_URLCONF = "example_project.urls"
    settings.LOGIN_URL = "demo:login"
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SITE_CLIENT_ID": "DEMO_SITE_CLIENT",
        "USER_LOOKUP": "example_project.demo.users.find_user",
        "USER_ADDRESS": "example_project.demo.users.address_of",
    }
    call_command("load_demo_data", stdout=io.StringIO())
    return live_server.url


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def screenshot(browser: Any, screenshot_dir: Path, request: Any) -> Callable[[str], Path]:
    """Save the page as ``test-artifacts/screenshots/<test>-<NN>-<step>.png``."""
    counter = iter(range(1, 100))
    prefix = _slug(request.node.name)

    def take(step: str) -> Path:
        path = screenshot_dir / f"{prefix}-{next(counter):02d}-{step}.png"
        assert browser.save_screenshot(str(path)), path
        return path

    return take


def wait_for_message(outbox: list[Any], count: int) -> Any:
    """The ``count``-th message of an outbox (it is sent before the page answers)."""
    deadline = time.monotonic() + WAIT
    while len(outbox) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} message(s), got {len(outbox)}")
        time.sleep(0.05)
    return outbox[count - 1]


def email_code(count: int) -> str:
    message = wait_for_message(mail.outbox, count)
    match = re.search(r"^\s+(\d{4,10})\s*$", message.body, re.M)
    assert match, message.body
    return match.group(1)
