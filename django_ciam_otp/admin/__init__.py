"""The Django admin for auth sources, API clients, quotas, the token log and its dashboard.

One module per page family; importing this package (Django's autodiscover
does) registers every ``ModelAdmin`` with the default site, as the single
admin.py did. The classes are importable from here for sites that
re-register them on an admin site of their own.

Safety rules the package keeps:

* A client secret exists in the clear only inside the response that creates
  or rotates it: it is rendered straight into that page (never into the
  session, a message or a URL), so reloading or revisiting shows nothing
  (``clients``).
* No page shows a hash (``secret_hash``, ``token_hash``, ``code_hash``,
  ``recipient_hash``) or a code.
* Saving a change form writes only the fields the form changed, so it never
  overwrites what runs concurrently: quota consumption (``used``), a secret
  rotated by another admin, ``last_used_at`` (``base.ChangedFieldsOnlyAdmin``).
* Top-up and reset are single ``UPDATE`` statements (``limit = limit + n``);
  what "used this period" means is read in one place (``quota_periods``).
"""

from __future__ import annotations

from .clients import OTPClientAdmin
from .prefixes import BlockedPrefixAdmin
from .quotas import QuotaAdmin
from .recipients import TestRecipientAdmin, TestRecipientForm
from .sources import AuthSourceAdmin
from .tokens import OTPTokenAdmin, recipient_key

__all__ = [
    "AuthSourceAdmin",
    "BlockedPrefixAdmin",
    "OTPClientAdmin",
    "OTPTokenAdmin",
    "QuotaAdmin",
    "TestRecipientAdmin",
    "TestRecipientForm",
    "recipient_key",
]
