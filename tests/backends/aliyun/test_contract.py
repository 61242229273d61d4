"""The SMS backend contract, kept by the Alibaba Cloud backend through approved templates.

Alibaba sends templates approved in its console, never the text this app
renders, so the contract's text is what the handset shows: the fake renders
the template SendSms named (one per usage and language, as a site sets
``TEMPLATE_CODES``) with the variables it carried. Two tests of the contract
cannot hold for a template provider and are restated below: an approved
template has no plural forms, and a site's Django template cannot change it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from django_ciam_otp.backends.base import Accepted
from django_ciam_otp.backends.sms.aliyun import SMSBackend

from ..contract import SMSBackendContract, make_message
from .fake import LABELS, FakeAliyun

TEMPLATE_CODES = {
    usage: {"en": f"SMS_EN_{usage.upper()}", "zh-hans": f"SMS_ZH_{usage.upper()}"}
    for usage in LABELS
}


class TestAliyunContract(SMSBackendContract[SMSBackend]):
    @pytest.fixture
    def backend(self, fake: FakeAliyun, configure: Callable[..., None]) -> SMSBackend:
        # Notification templates: a verification-code template takes the code alone.
        configure(
            TEMPLATE_CODES=TEMPLATE_CODES,
            TEMPLATE_PARAMS={"code": "code", "minutes": "minutes"},
        )
        self.fake = fake
        return SMSBackend()

    def delivered(self, backend: SMSBackend, message_id: Any) -> tuple[str, str]:
        assert isinstance(message_id, Accepted)
        return self.fake.text(message_id.message_id)

    def test_validity_is_singular_for_one_minute(self, backend: SMSBackend) -> None:
        """Restated: an approved template has no plural forms; "1" fills ``${minutes}``."""
        sent = backend.send(make_message(validity_seconds=60))
        assert self.delivered(backend, sent)[1].endswith(
            "It is valid for 1 minutes. Do not share it."
        )
        assert self.fake.sends[-1].params["TemplateParam"] == '{"code":"482915","minutes":"1"}'

    def test_site_template_for_one_usage_wins(
        self, backend: SMSBackend, settings: Any, tmp_path: Path
    ) -> None:
        """Restated: Alibaba sends the approved template; a site's template changes nothing."""
        template = tmp_path / "django_ciam_otp" / "sms" / "reset_password.txt"
        template.parent.mkdir(parents=True)
        template.write_text("[Acme] {{ code }} resets your password & expires soon.\n")
        settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

        sent = backend.send(make_message(usage="reset_password"))

        assert self.delivered(backend, sent)[1].startswith(
            "Your verification code for Reset password is 482915."
        )
