"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium.

The driver and the browser are the system's, named explicitly, so Selenium
Manager never runs. When either is missing the tests fail with the command
that installs them; they are never skipped.

Pages are audited with axe-core, fetched from npm on the first run
(``npm install --prefix var/axe-core axe-core@4``; ``var/`` is not committed)
and injected into each page state; without npm the tests fail saying so.
Set ``AXE_CORE_JS`` to use an ``axe.min.js`` of your own instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from tests.conftest import use_example_project

CHROMIUM = Path(os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE_DIR = ROOT / "var" / "axe-core"
AXE_VERSION = "4"  # the newest axe-core 4.x
WAIT = 10  # seconds for a page or an element
#: Viewports the example pages are walked at (CSS pixels): a laptop, and an iPhone 14 / 15.
DEVICES = {"desktop": (1280, 860), "phone": (390, 844)}
#: Accept-Language of the browser, and the language Django then answers in.
LANGUAGES = {"en": "en-US,en", "zh-hans": "zh-CN,zh"}


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


def _chromium(profile: Path, *, device: str = "desktop", language: str = "en") -> Any:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    accept = LANGUAGES[language]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--lang={accept.split(',')[0]}",
        "--window-size=1100,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": accept})
    if device == "phone":
        width, height = DEVICES["phone"]
        options.add_experimental_option(
            "mobileEmulation",
            {
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": True},
                "userAgent": (
                    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                    "(KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36"
                ),
            },
        )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    if device == "desktop":
        driver.set_window_size(*DEVICES["desktop"])
    return driver


def _keep_failure(driver: Any, request: pytest.FixtureRequest, suffix: str = "") -> None:
    """When the test failed, keep the last page as ``<test>-failed.png`` and ``.html``."""
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = SCREENSHOTS / f"{_slug(request.node.name)}{suffix}-failed"
        driver.save_screenshot(f"{stem}.png")
        Path(f"{stem}.html").write_text(driver.page_source, encoding="utf-8")


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh headless Chromium with its own profile, in English.

    When the test fails, the last page is kept as ``<test>-failed.png`` and
    ``.html`` beside the step screenshots.
    """
    driver = _chromium(tmp_path / "chromium-profile")
    try:
        yield driver
        _keep_failure(driver, request)
    finally:
        driver.quit()


@pytest.fixture
def chromium(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``chromium(device="phone", language="zh-hans")``: more browsers, each its own person."""
    drivers: list[Any] = []

    def start(*, device: str = "desktop", language: str = "en") -> Any:
        profile = tmp_path / f"chromium-profile-{len(drivers)}"
        drivers.append(_chromium(profile, device=device, language=language))
        return drivers[-1]

    try:
        yield start
        for n, driver in enumerate(drivers):
            _keep_failure(driver, request, f"-{n}" if n else "")
    finally:
        for driver in drivers:
            driver.quit()


@pytest.fixture
def demo_site(settings: Any, live_server: Any) -> str:
    """The example project's pages on pytest-django's live server; returns its URL.

    The live server is a thread of this process, so settings overrides, the
    locmem SMS outbox and ``django.core.mail.outbox`` are shared with the test.
    """
    use_example_project(settings)
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


# --- accessibility: axe-core on every page state ----------------------------------------


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's ``axe.min.js``: ``AXE_CORE_JS``, or fetched from npm into ``var/axe-core``."""
    configured = os.environ.get("AXE_CORE_JS")
    script = Path(configured) if configured else AXE_DIR / "node_modules/axe-core/axe.min.js"
    if not script.exists() and not configured:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                "Browser tests audit every page with axe-core, fetched from npm, and npm is "
                "missing: `apt-get install -y nodejs npm` (.ci/run does this on CI), or set "
                "AXE_CORE_JS to an axe.min.js.",
                pytrace=False,
            )
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        command = [npm, "install", "--prefix", str(AXE_DIR), "--no-audit", "--no-fund"]
        done = subprocess.run(  # noqa: S603 - a fixed command line
            [*command, "--silent", f"axe-core@{AXE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not script.exists():
            pytest.fail(
                f"`npm install axe-core@{AXE_VERSION}` failed (exit {done.returncode}): "
                f"{done.stderr.strip()[-800:]}",
                pytrace=False,
            )
    if not script.exists():
        pytest.fail(f"AXE_CORE_JS={configured}: no such file", pytrace=False)
    return script.read_text(encoding="utf-8")


AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then((result) => done(result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " — " + n.failureSummary),
  }))))
  .catch((error) => done([{id: "axe-error", help: String(error), nodes: []}]));
"""


def axe_violations(driver: Any, source: str) -> list[dict[str, Any]]:
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(source)
    return list(driver.execute_async_script(AXE_RUN))


@pytest.fixture
def audit(
    axe_source: str, screenshot_dir: Path, request: pytest.FixtureRequest
) -> Callable[[Any], Callable[[str], None]]:
    """``audit(driver)("code-page")``: axe-core finds no violation, and a screenshot is kept.

    Screenshots go to ``test-artifacts/screenshots/<test>-<NN>-<state>.png``.
    """
    counter = iter(range(1, 100))
    prefix = _slug(request.node.name)

    def for_driver(driver: Any) -> Callable[[str], None]:
        def check(state: str) -> None:
            path = screenshot_dir / f"{prefix}-{next(counter):02d}-{_slug(state)}.png"
            assert driver.save_screenshot(str(path)), path
            violations = axe_violations(driver, axe_source)
            assert violations == [], (
                f"axe-core on {state!r} ({driver.current_url}):\n"
                + json.dumps(violations, indent=2, ensure_ascii=False)
            )

        return check

    return for_driver
