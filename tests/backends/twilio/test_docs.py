"""``docs/sms/twilio.md`` cannot drift from the backend: its check ids and its error table.

Its settings section is held to ``conf.DEFAULTS`` with the other backends' in
``tests/docs/test_backend_settings.py``.
"""

from __future__ import annotations

import re

from django_ciam_otp.backends.base import (
    BackendMisconfigured,
    NotDeliverableHere,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from django_ciam_otp.backends.sms.twilio import ERROR_CLASSES

from ..docs_contract import check_ids_in_code, package, page

PAGE = page("twilio")


def test_every_check_id_is_listed_with_its_line() -> None:
    listed = set(re.findall(r"^\* `(ciam_otp\.[EW]\d{3})`: ", PAGE.read_text(), flags=re.M))
    assert listed == check_ids_in_code(package("twilio"))


OUTCOMES = {
    "Retry": TransientDeliveryError,
    "Give up": PermanentDeliveryError,
    "Next backend": NotDeliverableHere,
    "Stop this backend": BackendMisconfigured,
}


def test_the_page_s_table_is_the_backend_s() -> None:
    rows = re.findall(
        r"^\| (`\d{5}`(?:, `\d{5}`)*) \| [^|]+ \| ([^|(]+?)(?: \(.*\))? \|$",
        PAGE.read_text(),
        flags=re.M,
    )
    documented = {
        int(code): OUTCOMES[outcome].__name__
        for codes, outcome in rows
        for code in re.findall(r"\d{5}", codes)
    }
    assert documented == {code: cls.__name__ for code, cls in ERROR_CLASSES.items()}
