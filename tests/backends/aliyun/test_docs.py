"""The backend's page, ``docs/sms/aliyun.md``, cannot drift from the code.

Its error table names every code of ``errors.ERROR_CLASSES``; its checks table
lists every check id the package reports. Its settings section is held to
``conf.DEFAULTS`` with the other backends' in ``tests/docs/test_backend_settings.py``.
"""

from __future__ import annotations

import re

from django_ciam_otp.backends.sms.aliyun import ERROR_CLASSES

from ..docs_contract import check_ids_in_code, package, page

PAGE = page("aliyun")


def text() -> str:
    return PAGE.read_text(encoding="utf-8")


def test_every_error_code_is_in_the_tables() -> None:
    missing = [code for code in ERROR_CLASSES if f"`{code}`" not in text()]
    assert missing == [], f"{PAGE.name} does not say what {missing} mean"


def test_every_check_id_is_listed() -> None:
    in_code = check_ids_in_code(package("aliyun"))
    listed = set(re.findall(r"^\| `(ciam_otp\.[EW]\d{3})` \|", text(), flags=re.M))
    assert in_code == listed
    assert in_code == {f"ciam_otp.E{n}" for n in range(131, 140)} | {
        f"ciam_otp.W{n}" for n in range(131, 136)
    }


def test_the_receipts_url() -> None:
    assert "https://<your site>/otp/receipts/aliyun/?secret=<RECEIPT_SECRET>" in text()
