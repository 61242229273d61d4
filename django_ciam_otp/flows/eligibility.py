"""Step 3 of a send: whose address it is, and so whether and where a code goes.

A login code does not depend on an account here (the authentication backend
decides that), so only the other usages look one up. ``signup`` and
``update_userinfo`` refuse an address in use; ``reset_password`` for an
address with no account is *suppressed*: it answers exactly as a real one
(the same limits, monitor, quota statement and publish) but sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from .. import identity, ratelimits
from ..conf import otp_settings
from ..exceptions import EmailIsUsed, OTPError, PhoneNumberIsUsed
from ..models import Channel, OTPClient, TestRecipient, Usage
from ..validators import Recipient, deliverable_email
from .shape import SendRequest


@dataclass(frozen=True)
class Eligibility:
    """What the account look-up decided about one send."""

    #: Where the code goes (the account's own spelling when it is for an account).
    address: str
    #: The fixed code of a test recipient, or ``None``.
    test_code: str | None
    #: A reset for nobody: every step runs, nothing is delivered.
    suppressed: bool

    @property
    def counted(self) -> bool:
        """Test recipients' fixed codes are not deliveries: no limits' monitor, no quota."""
        return self.test_code is None

    @property
    def deliver(self) -> bool:
        return self.counted and not self.suppressed


def decide(client: OTPClient, ask: SendRequest, request: HttpRequest | None) -> Eligibility:
    """Look the account up (not for login) and decide; ``*_is_used`` refuses here."""
    recipient = ask.recipient
    users = (
        [] if ask.usage == Usage.LOGIN else identity.find_users(recipient.channel, recipient.key)
    )
    if users and ask.usage in (Usage.SIGNUP, Usage.UPDATE_USERINFO):
        # The answer tells the caller something: it costs them like a send.
        ratelimits.count_caller(request, client_pk=client.pk)
        raise PhoneNumberIsUsed() if recipient.channel == Channel.SMS else EmailIsUsed()
    user = users[0] if len(users) == 1 else None
    return Eligibility(
        address=delivery_address(recipient, user),
        test_code=test_code(recipient, users, ask.usage),
        suppressed=ask.usage == Usage.RESET_PASSWORD and user is None,
    )


def delivery_address(recipient: Recipient, user: Any | None) -> str:
    """Where the code goes: the account's stored address when the code is for an account.

    The stored address has the recipient's canonical form (that is how the
    account was found), but it is the account's own spelling that receives
    the code, never the caller's.
    """
    if user is None or recipient.channel != Channel.EMAIL:
        return recipient.address
    stored = identity.stored_address(user, recipient.channel)
    if stored is None:
        return recipient.address
    try:
        return deliverable_email(stored)  # its IDNA2008 ASCII domain (validators.py)
    except OTPError:
        return recipient.address  # cannot happen: it matched the canonical form


def test_code(recipient: Recipient, users: list[Any], usage: str) -> str | None:
    """The fixed code of an enabled test recipient, when test recipients are on.

    A test recipient that has since become an account's address is an
    ordinary recipient again: its public fixed code must never prove control
    of a real account (nor skip that account's limits and quotas). A login
    send has not looked accounts up yet, so it does here — only for
    addresses that are test recipients, which are few.
    """
    if not otp_settings.TEST_RECIPIENTS_ENABLED:
        return None
    code = (
        TestRecipient.objects.filter(
            recipient=recipient.key, channel=recipient.channel, enabled=True
        )
        .values_list("code", flat=True)
        .first()
    )
    if code is None:
        return None
    if usage == Usage.LOGIN:
        users = identity.find_users(recipient.channel, recipient.key)
    return None if users else code
