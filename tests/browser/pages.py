"""Small helpers over the WebDriver: type, click, wait for the next page, audit a page state."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .conftest import WAIT


class Page:
    """One browser tab on the live server."""

    def __init__(
        self,
        browser: Any,
        base_url: str,
        *,
        audit: Callable[[str], None] | None = None,
    ) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser = browser
        self.base_url = base_url
        self.by = By
        self.ec = ec
        self.wait = WebDriverWait(browser, WAIT)
        self._audit = audit

    def open(self, path: str) -> None:
        self.browser.get(self.base_url + path)

    def find(self, css: str) -> Any:
        return self.wait.until(self.ec.visibility_of_element_located((self.by.CSS_SELECTOR, css)))

    def all(self, css: str) -> list[Any]:
        return self.browser.find_elements(self.by.CSS_SELECTOR, css)

    def actions(self) -> Any:
        from selenium.webdriver.common.action_chains import ActionChains

        return ActionChains(self.browser)

    def type(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def submit(self, css: str, *, to: str | None = None) -> None:
        """Click a submit button and wait until the next page (at path ``to``) has loaded."""
        self.navigates(lambda: self.find(css).click(), to=to)

    def navigates(self, action: Callable[[], Any], *, to: str | None = None) -> None:
        """Do ``action`` and wait for the page it leads to (at path ``to``)."""
        from selenium.common.exceptions import WebDriverException

        old = self.find("html")
        try:
            action()
        except WebDriverException as exc:
            # The action's own page left (a click that submitted, a code box that
            # submitted itself on its last digit) while the driver was still finishing
            # the command; whether the next page comes is checked just below.
            if "does not belong to the document" not in str(exc) and "stale" not in str(exc):
                raise
        self.wait.until(lambda d: gone(old), "the page did not change")
        if to is not None:
            self.wait.until(lambda d: self.path().split("?")[0] == to, f"expected {to}")
        self.wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        self.find("main")

    def enter_code(self, code: str, *, to: str) -> None:
        """Type a code: the box submits itself once it holds a whole code."""
        box = self.find("#id_code")
        self.navigates(lambda: box.send_keys(code), to=to)

    def paste(self, css: str, text: str, *, to: str | None = None) -> None:
        """Paste ``text`` into a field, as a person pasting a whole message does."""
        script = """
            const [field, text] = arguments;
            field.focus();
            field.value = text;
            const paste = {bubbles: true, inputType: "insertFromPaste", data: text};
            field.dispatchEvent(new InputEvent("input", paste));
        """
        self.navigates(lambda: self.browser.execute_script(script, self.find(css), text), to=to)

    def double_submit(self, form_css: str, **values: str) -> list[tuple[int, str]]:
        """Post the form twice at the same moment, past the page's own one-submit guard.

        Two ``fetch()`` calls from the page: the browser's own cookies, connections
        and redirects, as when a double click gets through. Returns each answer's
        ``(status, path)`` after its redirects; the page stays where it is.
        """
        script = """
            const [form, values] = arguments;
            const done = arguments[arguments.length - 1];
            const body = () => {
              const data = new FormData(form);
              for (const [name, value] of Object.entries(values)) data.set(name, value);
              return new URLSearchParams(data);
            };
            const post = () => fetch(form.action, {method: "POST", body: body()});
            Promise.all([post(), post()])
              .then((answers) => done(answers.map((a) => [a.status, new URL(a.url).pathname])))
              .catch((error) => done(String(error)));
        """
        answers = self.browser.execute_async_script(script, self.find(form_css), values)
        assert isinstance(answers, list), answers
        return [(status, path) for status, path in answers]

    def path(self) -> str:
        return self.browser.current_url.removeprefix(self.base_url)

    def text(self, css: str = "main") -> str:
        return self.find(css).text

    def title(self) -> str:
        return str(self.browser.title)

    def errors(self) -> list[str]:
        return [e.text for e in self.all("p.error") if e.is_displayed()]

    def focused(self) -> str:
        """The id of the element that has the focus."""
        return str(self.browser.execute_script("return document.activeElement.id"))

    def source(self) -> str:
        return str(self.browser.page_source)

    def audit(self, state: str) -> None:
        """axe-core finds nothing on the page as it is now; a screenshot keeps the state."""
        if self._audit is not None:
            self._audit(state)


def gone(element: Any) -> bool:
    """Whether ``element``'s page was replaced (Selenium's ``staleness_of``, and more).

    Between two pages chromedriver may answer "Node with given id does not belong
    to the document" instead of a stale element reference; it means the same.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def wrong(code: str, n: int = 1) -> str:
    return str((int(code) + n) % 10 ** len(code)).zfill(len(code))


def fullwidth(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def code_in(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)
