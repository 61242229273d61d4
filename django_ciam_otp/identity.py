"""Who an address belongs to: one canonical form decides "same address", never a collation.

A code that proves control of an address must only ever reach that address.
Databases fold case with their own rules: PostgreSQL's ``UPPER()`` under a
UTF-8 locale maps ``ı`` (dotless i) and ``ſ`` (long s) onto ``I`` and ``S``,
MySQL's ``_ci`` collations also drop accents, so ``email__iexact`` finds the
account of ``alice@example.com`` for ``alıce@example.com`` — a different
mailbox. This module is the one place that says when two addresses are the
same, and every path that finds a user by recipient goes through it: the
is-used checks and ``reset_password`` of a send, the authentication backend,
``USER_LOOKUP`` and the example project's pages.

The canonical form (:func:`canonical_email`, :func:`canonical_phone`):

* a phone number is its E.164 form (``phonenumbers``), so every written form
  of one number — spaces, dashes, ``+86``/``0086``, full-width digits — is one;
* an email address is Unicode NFC throughout; its domain is the IDNA ASCII
  form in lower case (what DNS resolves, so ``Bücher.DE`` and
  ``xn--bcher-kva.de`` are one domain); in its local part **only the ASCII
  letters A–Z are folded** to a–z. Every other character is kept exactly:
  ``ı``, ``ſ``, ``ß``, ligatures (``ﬁ``), full-width and look-alike letters of
  other scripts are never equal to an ASCII letter. Mail systems treat ASCII
  case in the local part as one mailbox in practice; nothing more can be
  assumed safely. (NFC does map the few characters Unicode declares
  canonically equivalent — the Kelvin sign *is* ``K`` — as every mail system
  that normalises does.)

A database look-up may still be used to find *candidates* (it can use an
index, and any folding it does only widens the net); the candidates are then
kept only when their stored address has the same canonical form
(:func:`find_user`). A code for an account goes to the address stored on the
account (:func:`stored_address`), never to the form the caller typed.

Sub-addressing (``name+tag@domain``) is a separate question, of rate limits
only: :func:`rate_limit_key` folds the tag so ``name+1@``, ``name+2@`` … share
one counter, while identity and delivery keep the exact address.
"""

from __future__ import annotations

import hmac
import logging
import unicodedata
from typing import TYPE_CHECKING, Any

import idna
from django.contrib.auth import get_user_model
from django.db.models import Q

from .conf import otp_settings
from .exceptions import OTPError
from .validators import fold_local_part, normalize_email, normalize_phone_number

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

logger = logging.getLogger(__name__)

SMS = "sms"
EMAIL = "email"

__all__ = [
    "canonical",
    "canonical_email",
    "canonical_phone",
    "find_user",
    "find_users",
    "fold_local_part",
    "is_used",
    "rate_limit_key",
    "same_address",
    "stored_address",
]


def canonical_email(address: str) -> str:
    """The canonical form of an email address; raises ``MalformedEmail`` when it is none.

    >>> canonical_email("Alice@Example.COM")
    'alice@example.com'
    >>> canonical_email("alıce@example.com") == canonical_email("alice@example.com")
    False
    """
    return normalize_email(address).key


def canonical_phone(number: str) -> str:
    """The E.164 form of an accepted mobile number; raises ``MalformedPhoneNumber``."""
    return normalize_phone_number(number).key


def canonical(channel: str, address: Any) -> str | None:
    """The canonical form of ``address`` for ``channel``, or ``None`` when it has none.

    Tolerant on purpose: a stored address that no longer parses (an old row,
    another region) is simply nobody's address here.
    """
    if not isinstance(address, str) or not address:
        return None
    try:
        return canonical_phone(address) if channel == SMS else canonical_email(address)
    except OTPError:
        return None


def same_address(channel: str, a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are one address under the canonical form (constant time)."""
    ca, cb = canonical(channel, a), canonical(channel, b)
    if ca is None or cb is None:
        return False
    return hmac.compare_digest(ca.encode("utf-8"), cb.encode("utf-8"))


def rate_limit_key(channel: str, key: str) -> str:
    """The per-recipient rate-limit identity of a canonical ``key``.

    For email the ``+tag`` of the local part is dropped (``name+x@d`` counts as
    ``name@d``), so sub-addresses cannot multiply a person's allowance. A
    local part that starts with ``+`` keeps it (there is no name before it).
    """
    if channel != EMAIL:
        return key
    local, _, domain = key.rpartition("@")
    name, plus, _tag = local.partition("+")
    if plus and name:
        return f"{name}@{domain}"
    return key


# --- users ----------------------------------------------------------------------------


def _email_field(model: type[AbstractBaseUser]) -> str:
    return str(otp_settings.USER_EMAIL_FIELD or model.get_email_field_name())


def stored_address(user: Any, channel: str) -> str | None:
    """The address stored on ``user`` for ``channel`` (what a code for the account goes to).

    ``USER_ADDRESS`` (a dotted path to ``callable(user, channel) -> str | None``)
    answers for sites whose addresses live elsewhere (a profile model);
    otherwise the email field (``USER_EMAIL_FIELD`` or the model's
    ``EMAIL_FIELD``) or ``USER_PHONE_FIELD`` is read.
    """
    reader = otp_settings.import_string("USER_ADDRESS")
    if reader is not None:
        value = reader(user, channel)
    elif channel == EMAIL:
        value = getattr(user, _email_field(type(user)), None)
    elif otp_settings.USER_PHONE_FIELD:
        value = getattr(user, otp_settings.USER_PHONE_FIELD, None)
    else:
        value = None
    return value if isinstance(value, str) and value else None


def _email_variants(key: str) -> set[str]:
    """Written forms a database may hold for the canonical ``key``: IDN and NFD domains/locals."""
    local, _, domain = key.rpartition("@")
    domains = {domain}
    if "xn--" in domain:
        try:
            domains.add(idna.decode(domain))
        except (idna.IDNAError, UnicodeError):
            pass
    locals_ = {local, unicodedata.normalize("NFD", local)}
    return {f"{lp}@{d}" for lp in locals_ for d in domains}


def _candidates(channel: str, key: str) -> list[Any]:
    """Users a look-up finds for ``key``: ``USER_LOOKUP`` or the configured fields.

    Only candidates: a look-up may fold more than the canonical form does
    (``__iexact``, a case-insensitive collation, a site's own rule);
    :func:`find_users` keeps the ones whose stored address really is ``key``.
    """
    lookup = otp_settings.import_string("USER_LOOKUP")
    if lookup is not None:
        found = lookup(channel, key)
        if found is None:
            return []
        if isinstance(found, list | tuple | set):
            return list(found)
        return [found]
    model = get_user_model()
    if channel == EMAIL:
        field = _email_field(model)
        query = Q()
        for variant in _email_variants(key):
            query |= Q(**{f"{field}__iexact": variant})
        return list(model._default_manager.filter(query)[:20])
    field = otp_settings.USER_PHONE_FIELD
    if not field:
        return []
    return list(model._default_manager.filter(**{field: key})[:20])


def find_users(channel: str, key: str) -> list[Any]:
    """Every user whose stored address has the canonical form ``key``.

    With no candidate the key is compared with itself: the same parsing as
    for one candidate, so an address without an account (a ``reset_password``
    that must answer like a real one) does not answer measurably sooner.
    """
    candidates = _candidates(channel, key)
    if not candidates:
        same_address(channel, key, key)
        return []
    return [u for u in candidates if same_address(channel, stored_address(u, channel), key)]


def find_user(channel: str, key: str) -> Any | None:
    """The one user whose stored address is ``key`` (canonical), or ``None``.

    Two accounts whose addresses differ only in ASCII case are one address
    here; which of them a code would prove is unknowable, so neither is
    returned (and :func:`is_used` says the address is taken).
    """
    users = find_users(channel, key)
    if len(users) == 1:
        return users[0]
    if len(users) > 1:
        logger.warning(
            "%d accounts share one %s address (canonical form); treated as none",
            len(users),
            channel,
        )
    return None


def is_used(channel: str, key: str) -> bool:
    """Whether any account's stored address is ``key`` (canonical)."""
    return bool(find_users(channel, key))
