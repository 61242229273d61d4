"""The locmem SMS backend: an in-memory outbox for tests."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from django_ciam_otp.backends.sms import locmem
from django_ciam_otp.backends.sms.locmem import SMSBackend, SMSRecord, clear_outbox, outbox

from .contract import PHONE, SMSBackendContract, make_message


class TestLocmemSMSBackend(SMSBackendContract[SMSBackend]):
    @pytest.fixture
    def backend(self) -> SMSBackend:
        return SMSBackend()

    def delivered(self, backend: SMSBackend, message_id: str) -> tuple[str, str]:
        (record,) = [r for r in outbox if r.message_id == message_id]
        return record.phone_number, record.text

    def test_records_everything_a_test_needs(self, backend: SMSBackend) -> None:
        message_id = backend.send(
            make_message(code="246810", usage="reset_password", language="zh-hans", token_id=42)
        )
        assert message_id.startswith("locmem-")
        assert outbox == [
            SMSRecord(
                phone_number=PHONE,
                text="您的重置密码验证码为 246810，5 分钟内有效，请勿泄露。",
                code="246810",
                usage="reset_password",
                message_id=message_id,
                language="zh-hans",
                token_id=42,
            )
        ]

    def test_outbox_keeps_sending_order(self, backend: SMSBackend) -> None:
        for code in ("111111", "222222", "333333"):
            backend.send(make_message(code=code))
        assert [r.code for r in outbox] == ["111111", "222222", "333333"]

    def test_outbox_is_shared_between_backend_instances(self) -> None:
        SMSBackend().send(make_message(code="101010"))
        SMSBackend().send(make_message(code="202020"))
        assert [r.code for r in outbox] == ["101010", "202020"]

    def test_records_are_frozen(self, backend: SMSBackend) -> None:
        backend.send(make_message())
        with pytest.raises(dataclasses.FrozenInstanceError):
            outbox[0].code = "000000"  # type: ignore[misc]

    def test_clear_outbox_empties_the_same_list(self, backend: SMSBackend) -> None:
        backend.send(make_message())
        same_list = locmem.outbox
        clear_outbox()
        assert same_list is locmem.outbox
        assert outbox == []

    def test_conftest_fixture_is_the_outbox(self, backend: SMSBackend, sms_outbox: Any) -> None:
        backend.send(make_message(code="999888"))
        assert sms_outbox is outbox
        assert sms_outbox[-1].code == "999888"

    def test_outbox_starts_empty(self) -> None:
        # The suite's autouse fixture clears it; a leak from the test above would show.
        assert outbox == []
