"""``docs/sms/sns.md`` is true to the backend: its errors and its check ids.

Its settings section (``### AWS SNS settings``) is held to ``conf.DEFAULTS``
with the other backends' in ``tests/docs/test_backend_settings.py``.
"""

from __future__ import annotations

import re

from django_ciam_otp.backends.base import (
    BackendMisconfigured,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.sns import ERROR_CLASSES

from ..docs_contract import check_ids_in_code, package, page, part

PAGE = page("sns")
OUTCOMES = {
    "retry": TransientDeliveryError,
    "give up": PermanentDeliveryError,
    "next backend": NotDeliverableHere,
    "stop": BackendMisconfigured,
}


def test_the_error_table_is_the_backends() -> None:
    documented: dict[str, str] = {}
    for row in re.findall(r"^\| (`.+?) \| (.+?) \| .+ \|$", part(PAGE, "Errors"), flags=re.M):
        codes, outcome = row
        for code in re.findall(r"`([^`]+)`", codes):
            assert code not in documented, f"{code} is in the table twice"
            documented[code] = outcome
    assert {code: OUTCOMES[outcome] for code, outcome in documented.items()} == ERROR_CLASSES


def test_every_check_id_is_listed() -> None:
    in_code = check_ids_in_code(package("sns"))
    listed = set(re.findall(r"^\| `(ciam_otp\.[EW]\d{3})` \|", part(PAGE, "System checks"), re.M))
    assert in_code == listed
    assert len(in_code) == 10
