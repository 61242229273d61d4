"""The console SMS backend: prints each message to a stream."""

from __future__ import annotations

import io
import re
import threading

import pytest

from django_ciam_otp.backends.sms.console import SMSBackend

from .contract import PHONE, SMSBackendContract, make_message

BLOCK = re.compile(r"To: (?P<phone>\S+)\nMessage-ID: (?P<id>\S+)\n\n(?P<text>[^\n]*)\n-{79}\n")


def parse(output: str) -> list[re.Match[str]]:
    """Every message block in ``output``; asserts nothing else is there."""
    blocks = list(BLOCK.finditer(output))
    assert "".join(m.group(0) for m in blocks) == output
    return blocks


class TestConsoleSMSBackend(SMSBackendContract[SMSBackend]):
    @pytest.fixture
    def backend(self) -> SMSBackend:
        return SMSBackend(stream=io.StringIO())

    def delivered(self, backend: SMSBackend, message_id: str) -> tuple[str, str]:
        stream = backend.stream
        assert isinstance(stream, io.StringIO)
        (block,) = [m for m in parse(stream.getvalue()) if m["id"] == message_id]
        return block["phone"], block["text"]

    def test_output_format(self, backend: SMSBackend) -> None:
        message_id = backend.send(make_message(code="123456", validity_seconds=60))
        assert message_id.startswith("console-")
        stream = backend.stream
        assert isinstance(stream, io.StringIO)
        assert stream.getvalue() == (
            f"To: {PHONE}\n"
            f"Message-ID: {message_id}\n"
            "\n"
            "Your verification code for Log in is 123456. It is valid for 1 minute. "
            "Do not share it.\n" + "-" * 79 + "\n"
        )

    def test_writes_to_stdout_by_default(self, capsys: pytest.CaptureFixture[str]) -> None:
        message_id = SMSBackend().send(make_message(code="555000"))
        out = capsys.readouterr().out
        (block,) = parse(out)
        assert block["id"] == message_id
        assert block["phone"] == PHONE
        assert "555000" in block["text"]

    def test_concurrent_sends_do_not_interleave(self) -> None:
        class SlowStream(io.StringIO):
            """Yields the GIL between writes, so a missing lock would show."""

            def write(self, s: str) -> int:
                written = 0
                for char in s:
                    written += super().write(char)
                    if char == "\n":
                        threading.Event().wait(0.0005)
                return written

        stream = SlowStream()
        backend = SMSBackend(stream=stream)
        ids: list[str] = []
        ids_lock = threading.Lock()

        def send(n: int) -> None:
            message_id = backend.send(make_message(code=f"{n:06d}"))
            with ids_lock:
                ids.append(message_id)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        blocks = parse(stream.getvalue())
        assert sorted(m["id"] for m in blocks) == sorted(ids)
        assert len(ids) == 16
        assert {m["text"].split(" is ")[1][:6] for m in blocks} == {f"{n:06d}" for n in range(16)}
