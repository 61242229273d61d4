"""The file-based SMS backend: one UTF-8 file per message."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.base import TransientDeliveryError
from django_ciam_otp.backends.sms.filebased import SMSBackend

from .contract import PHONE, SMSBackendContract, make_message


def read(path: Path) -> tuple[dict[str, str], str]:
    """Headers and text of one message file, per the documented format."""
    head, sep, body = path.read_bytes().decode("utf-8").partition("\n\n")
    assert sep, "a blank line separates headers and text"
    assert body.endswith("\n") and body.count("\n") == 1
    headers = dict(line.split(": ", 1) for line in head.split("\n"))
    return headers, body[:-1]


class TestFileBasedSMSBackend(SMSBackendContract[SMSBackend]):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> SMSBackend:
        return SMSBackend(file_path=tmp_path / "sms")

    def delivered(self, backend: SMSBackend, message_id: str) -> tuple[str, str]:
        headers, text = read(backend.file_path / message_id)
        return headers["To"], text

    def test_file_format(self, backend: SMSBackend) -> None:
        message_id = backend.send(make_message(code="135790", usage="signup"))
        headers, text = read(backend.file_path / message_id)
        assert list(headers) == ["To", "Usage", "Date"]
        assert headers["To"] == PHONE
        assert headers["Usage"] == "signup"
        assert "135790" in text
        first_line = (backend.file_path / message_id).read_text(encoding="utf-8").split("\n")[0]
        assert first_line == f"To: {PHONE}"

    def test_one_file_per_message(self, backend: SMSBackend) -> None:
        ids = [backend.send(make_message(code=f"00000{n}")) for n in range(3)]
        assert sorted(p.name for p in backend.file_path.iterdir()) == sorted(ids)
        assert all(name.endswith(".txt") for name in ids)

    def test_file_names_sort_in_sending_order(self, backend: SMSBackend) -> None:
        ids = [backend.send(make_message()) for _ in range(5)]
        assert sorted(ids) == ids

    def test_chinese_text_is_written_as_utf8(self, backend: SMSBackend) -> None:
        message_id = backend.send(make_message(language="zh-hans"))
        raw = (backend.file_path / message_id).read_bytes()
        assert "您的登录验证码为 482915".encode() in raw

    def test_files_are_private(self, backend: SMSBackend) -> None:
        message_id = backend.send(make_message())
        mode = stat.S_IMODE(os.stat(backend.file_path / message_id).st_mode)
        assert mode & 0o077 == 0

    def test_creates_missing_directories(self, tmp_path: Path) -> None:
        target = tmp_path / "a" / "b" / "c"
        backend = SMSBackend(file_path=str(target))
        assert target.is_dir()
        assert (target / backend.send(make_message())).is_file()

    def test_reads_the_path_from_settings(self, settings: Any, tmp_path: Path) -> None:
        settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_FILE_PATH": str(tmp_path / "from-settings")}
        backend = SMSBackend()
        message_id = backend.send(make_message())
        assert (tmp_path / "from-settings" / message_id).is_file()

    def test_kwarg_wins_over_settings(self, settings: Any, tmp_path: Path) -> None:
        settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_FILE_PATH": str(tmp_path / "settings")}
        backend = SMSBackend(file_path=tmp_path / "kwarg")
        message_id = backend.send(make_message())
        assert (tmp_path / "kwarg" / message_id).is_file()
        assert not (tmp_path / "settings").exists()

    def test_no_path_is_a_configuration_error(self, settings: Any) -> None:
        settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_FILE_PATH": None}
        with pytest.raises(ImproperlyConfigured, match="SMS_FILE_PATH"):
            SMSBackend()

    def test_path_that_is_a_file_is_a_configuration_error(self, tmp_path: Path) -> None:
        not_a_dir = tmp_path / "file"
        not_a_dir.write_text("")
        with pytest.raises(ImproperlyConfigured, match="not a directory"):
            SMSBackend(file_path=not_a_dir)

    def test_write_failure_is_transient(self, backend: SMSBackend) -> None:
        backend.file_path.rmdir()
        with pytest.raises(TransientDeliveryError, match="could not write SMS file"):
            backend.send(make_message())
