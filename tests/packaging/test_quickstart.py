"""The README's quickstart, applied to a new project that installed the wheel.

SPEC.md section 1: a site that adds the app to ``INSTALLED_APPS``, one
``include()`` and ``migrate`` (no Celery app, no broker, no Redis, the default
cache) gets working codes. This test does what a reader of the README does, in
a clean virtualenv (no site packages, dependencies from the package index):
``pip install`` the wheel, ``django-admin startproject``, append the README's
settings and URL snippets, run its shell commands, then send a code over HTTP
to ``runserver``, read it from the console SMS backend's output and verify it.

The snippets are read from README.md, each the fenced block right after an
HTML comment on its own line::

    <!-- quickstart:settings -->   python appended to mysite/settings.py
    <!-- quickstart:urls -->       python appended to mysite/urls.py
    <!-- quickstart:shell -->      (optional) console/sh: `python manage.py ...` lines are run

so the README cannot drift from what works.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port, port_open

from .conftest import REPO, Dists

README = REPO / "README.md"
PHONE = "13612345678"
EMAIL = "someone@example.com"
MARKER = re.compile(r"^[ \t]*<!--\s*quickstart:([\w-]+)\s*-->[ \t]*$")
FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([\w+-]*)")
SEPARATOR = "-" * 79  # ends each message of the console SMS backend


# -- reading the README ---------------------------------------------------------------


def quickstart_blocks(text: str) -> dict[str, tuple[str, str]]:
    """``{name: (language, code)}`` for every ``<!-- quickstart:name -->`` marker.

    The marker must be followed (blank lines allowed) by a fenced block; the
    fence's indentation (a block inside a numbered list item) is removed.
    """
    lines = text.splitlines()
    blocks: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        name = marker.group(1)
        if name in blocks:
            raise AssertionError(f"README.md has two `<!-- quickstart:{name} -->` markers")
        start = number + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        fence = FENCE.match(lines[start]) if start < len(lines) else None
        if fence is None:
            raise AssertionError(
                f"README.md line {number + 1}: `<!-- quickstart:{name} -->` must be followed "
                "by a fenced code block"
            )
        indent, ticks, language = fence.groups()
        closing = re.compile(rf"^[ \t]*{re.escape(ticks[0])}{{{len(ticks)},}}[ \t]*$")
        body: list[str] = []
        for inner in lines[start + 1 :]:
            if closing.match(inner):
                break
            body.append(inner[len(indent) :] if inner.startswith(indent) else inner.lstrip())
        else:
            raise AssertionError(f"README.md: the quickstart:{name} block is never closed")
        blocks[name] = (language, textwrap.dedent("\n".join(body)) + "\n")
    return blocks


def readme_quickstart() -> dict[str, tuple[str, str]]:
    blocks = quickstart_blocks(README.read_text(encoding="utf-8"))
    for name in ("settings", "urls"):
        if name not in blocks:
            pytest.fail(
                f"README.md has no `<!-- quickstart:{name} -->` marker: the quickstart's "
                f"{name} snippet must be a ```python block right after that HTML comment, "
                "so this test can apply it (see tests/packaging/test_quickstart.py)",
                pytrace=False,
            )
        if blocks[name][0] != "python":
            pytest.fail(
                f"README.md: the quickstart:{name} block must be ```python, "
                f"not ```{blocks[name][0]}",
                pytrace=False,
            )
    return blocks


def shell_commands(code: str) -> list[str]:
    """The commands of a console/sh block: ``$ `` lines when there are any, else every line.

    Blank lines and comments are dropped, ``\\`` continuations joined.
    """
    joined = re.sub(r"[ \t]*\\\n\s*", " ", code)
    lines = [line.strip() for line in joined.splitlines()]
    if any(line.startswith("$ ") for line in lines):
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return [line for line in lines if line and not line.startswith("#")]


def test_quickstart_blocks_parser() -> None:
    text = textwrap.dedent(
        """\
        1. Settings:

           <!-- quickstart:settings -->
           ```python
           INSTALLED_APPS += ["x"]
               # indented
           ```
        <!-- quickstart:shell -->

        ```console
        $ python manage.py migrate
        Operations to perform:
        $ python manage.py create_otp_client \\
            --name "Mobile app" --json  # once
        ```
        """
    )
    blocks = quickstart_blocks(text)
    assert blocks["settings"] == ("python", 'INSTALLED_APPS += ["x"]\n    # indented\n')
    assert blocks["shell"][0] == "console"
    assert shell_commands(blocks["shell"][1]) == [
        "python manage.py migrate",
        'python manage.py create_otp_client --name "Mobile app" --json  # once',
    ]
    with pytest.raises(AssertionError, match="fenced code block"):
        quickstart_blocks("<!-- quickstart:urls -->\ntext\n")


def test_readme_has_the_quickstart_blocks() -> None:
    """Fast feedback for README edits; the packaging test below runs the blocks."""
    blocks = readme_quickstart()
    for name in ("settings", "urls"):
        compile(blocks[name][1], f"README.md quickstart:{name}", "exec")
    if "shell" in blocks:
        assert shell_commands(blocks["shell"][1]), "the quickstart:shell block has no command"


# -- the new site -----------------------------------------------------------------------


class Site:
    """A project made by ``startproject`` in a virtualenv of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.project = root / "mysite"
        # Nothing of this test session's Django may leak into the site's processes.
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "CIAM_OTP", "PYTHON", "VIRTUAL_ENV", "CELERY"))
        }
        self.env.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1")

    def run(self, *argv: str | Path, timeout: float = 120, check: bool = True) -> Any:
        result = subprocess.run(
            [str(a) for a in argv],
            cwd=self.project if self.project.exists() else self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`{shlex.join(str(a) for a in argv)}` exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
        return result

    def manage(self, *args: str, **kwargs: Any) -> Any:
        return self.run(self.python, "manage.py", *args, **kwargs)


class Server:
    """``manage.py runserver`` for a site: its stdout (where the console backends write
    the messages) and stderr (the request log) in two files."""

    def __init__(self, site: Site) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = site.root / "runserver.out"
        self.stderr = site.root / "runserver.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [site.python, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                cwd=site.project,
                env=site.env,
                stdout=out,
                stderr=err,
            )

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def describe(self) -> str:
        return f"runserver stdout:\n{self.output()}\nstderr:\n{self.stderr.read_text()}"

    def wait_for(self, predicate: Any, what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            if self.process.poll() is not None:
                pytest.fail(
                    f"runserver exited {self.process.returncode}; {self.describe()}", pytrace=False
                )
            time.sleep(0.1)
        pytest.fail(f"no {what} after {timeout} s; {self.describe()}", pytrace=False)

    def listening(self) -> bool:
        return port_open(self.port)

    def message_to(self, recipient: str) -> str | None:
        """The last message a console backend printed *whole* for ``recipient``, if any.

        Only chunks a separator has closed: the delivery thread may be half-way
        through writing one (a partial email's MIME body can decode to a wrong code).
        """
        chunks = re.split(rf"^{SEPARATOR}$", self.output(), flags=re.MULTILINE)[:-1]
        for chunk in reversed(chunks):
            if re.search(rf"^To: \S*{re.escape(recipient)}$", chunk, flags=re.MULTILINE):
                return chunk
        return None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def sms_code(message: str) -> str | None:
    """The code in a console SMS backend's message: ``To:``, ``Message-ID:``, blank, text.

    The text starts after the blank line that follows ``To:``: the first chunk of
    runserver's output also holds its banner, whose blank lines come earlier, and
    splitting there took the ``Message-ID`` line (a UUID, which can hold six
    digits in a row) for the text: a wrong code, now and then.
    """
    start = re.search(r"^To: ", message, flags=re.MULTILINE)
    message = message[start.start() :] if start else message
    text = message.split("\n\n", 1)[-1]
    found = re.search(r"(?<!\d)\d{6}(?!\d)", text)
    return found.group(0) if found else None


def email_code(message: str) -> str | None:
    """The code in the text part of a mail printed by Django's console email backend."""
    start = re.search(r"^Content-Type: ", message, flags=re.MULTILINE)
    if start is None:
        return None
    mail = email.message_from_string(message[start.start() :], policy=email.policy.default)
    body = mail.get_body(preferencelist=("plain",))
    found = body and re.search(r"(?<!\d)\d{6}(?!\d)", body.get_content())
    return found.group(0) if found else None


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


@pytest.fixture
def server(site: Site) -> Iterator[Callable[[], Server]]:
    """Starts runserver on demand; stops the process it started at teardown."""
    started: list[Server] = []

    def start() -> Server:
        started.append(Server(site))
        started[-1].wait_for(started[-1].listening, "runserver listening")
        return started[-1]

    yield start
    for running in started:
        running.stop()


def post(url: str, body: dict[str, Any], authorization: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": authorization},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.packaging
def test_readme_quickstart_on_a_new_project(
    dists: Dists, site: Site, server: Callable[[], Server]
) -> None:
    blocks = readme_quickstart()

    # A clean virtualenv: the wheel and its dependencies from the index (pip's cache helps).
    site.run(sys.executable, "-m", "venv", site.venv)
    site.run(site.python, "-m", "pip", "install", "-q", dists.wheel, timeout=300)
    installed = site.run(
        site.python, "-c", "import django_ciam_otp; print(django_ciam_otp.__file__)"
    )
    assert Path(installed.stdout.strip()).is_relative_to(site.venv), installed.stdout
    site.run(site.venv / "bin" / "django-admin", "startproject", "mysite")  # in site.root

    with (site.project / "mysite" / "settings.py").open("a", encoding="utf-8") as settings:
        settings.write("\n# README.md quickstart:settings\n" + blocks["settings"][1])
        # The site's own mail set-up (startproject leaves SMTP on localhost), not the app's.
        settings.write('\nEMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"\n')
    with (site.project / "mysite" / "urls.py").open("a", encoding="utf-8") as urls:
        urls.write("\n# README.md quickstart:urls\n" + blocks["urls"][1])

    credentials = run_shell_block(site, blocks.get("shell"))
    if credentials is None:
        created = site.manage("create_otp_client", "--name", "quickstart", "--json")
        credentials = json.loads(created.stdout)

    site.manage("check")
    deploy = site.manage("check", "--deploy", check=False)  # warns: DEBUG, console backends...
    assert "Traceback" not in deploy.stderr, deploy.stderr
    assert deploy.returncode == 0 or "System check identified" in deploy.stderr, deploy.stderr
    assert "(ciam_otp." in deploy.stderr, "check --deploy names no production need of the app"

    running = server()
    raw = f"{credentials['client_id']}:{credentials['client_secret']}".encode()
    authorization = "Basic " + base64.b64encode(raw).decode()
    for recipient, read_code in (
        (("phone_number", PHONE), sms_code),
        (("email", EMAIL), email_code),
    ):
        field, address = recipient
        body = {"usage": "signup", field: address}
        status, sent = post(f"{running.url}/otp/send", body, authorization)
        assert status == 200, (status, sent, running.describe())
        assert sent["otp_token"]

        code = running.wait_for(
            lambda: (message := running.message_to(address)) and read_code(message),
            f"code in the console backend's message to {address}",
        )
        body.update(otp_token=sent["otp_token"], otp=code)
        status, verified = post(f"{running.url}/otp/verify", body, authorization)
        assert status == 200, (status, verified, running.describe())
        assert verified["verified"] is True


def run_shell_block(site: Site, block: tuple[str, str] | None) -> dict[str, str] | None:
    """Run the quickstart:shell block's ``manage.py`` commands; the client it creates, if any.

    ``pip install``, ``django-admin startproject`` and ``cd`` were done by the
    test itself (from the wheel, into the temporary directory). Without a
    shell block, ``migrate`` is what the install story names.
    """
    if block is None:
        site.manage("migrate", "--noinput")
        return None
    credentials = None
    for command in shell_commands(block[1]):
        argv = shlex.split(command, comments=True)
        if argv[:2] in (["python", "manage.py"], ["python3", "manage.py"]):
            result = site.manage(*argv[2:])
        elif argv[:1] == ["./manage.py"]:
            result = site.manage(*argv[1:])
        elif argv[:2] == ["pip", "install"] or argv[:4] == ["python", "-m", "pip", "install"]:
            assert any(a.startswith("django-ciam-otp") for a in argv), command
            continue
        elif argv[:2] == ["django-admin", "startproject"] or argv[:1] == ["cd"]:
            continue
        else:
            pytest.fail(
                f"README.md quickstart:shell: this test does not know how to run `{command}`; "
                "teach tests/packaging/test_quickstart.py::run_shell_block",
                pytrace=False,
            )
        if "create_otp_client" in argv and "--json" in argv:
            credentials = json.loads(result.stdout)
    return credentials
