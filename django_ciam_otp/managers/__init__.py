"""The states of a token, a quota and a recipient's throttle, and every move between them.

Each state change is one QuerySet method here, named for the transition
(``OTPToken.objects.claim_for_delivery()``, ``Quota.objects.consume()``, …),
and written once: delivery and the flows call these, never
``filter(...).update(...)`` of their own. Each is a conditional ``UPDATE``
whose ``WHERE`` names the state the row must be in, so two requests or
workers racing for the same move cannot both make it; the method's answer
says whether this caller did. ``mark_sent`` alone is unconditional: what a
provider accepted is recorded whatever the row says. ``docs/token-states.md``
draws a token's states and the method behind each arrow.

The choices and the quota period rule are in ``states``: the transitions need
them at run time, and ``models.py`` (which imports this package) re-exports
them. Statements the ORM cannot write are in ``sql.py``.
"""

from .prefixes import BlockedPrefixQuerySet, OTPClientQuerySet
from .quotas import QuotaQuerySet
from .states import (
    EPOCH,
    FINISHED_DELIVERIES,
    SENT_DELIVERIES,
    DeliveryStatus,
    QuotaPeriod,
    TokenStatus,
    current_period_start,
    period_start_for,
    rolled_over,
)
from .tokens import CLAIM_FIELDS, OTPTokenQuerySet, RecipientThrottleQuerySet

__all__ = [
    "BlockedPrefixQuerySet",
    "OTPClientQuerySet",
    "CLAIM_FIELDS",
    "EPOCH",
    "FINISHED_DELIVERIES",
    "SENT_DELIVERIES",
    "DeliveryStatus",
    "OTPTokenQuerySet",
    "QuotaPeriod",
    "QuotaQuerySet",
    "RecipientThrottleQuerySet",
    "TokenStatus",
    "current_period_start",
    "period_start_for",
    "rolled_over",
]
