"""The caller's IP address for the per-IP limits: never missing, never a 500.

The same documented settings decide it as for django-ratelimit's ``"ip"`` key
(``RATELIMIT_IP_META_KEY`` behind a proxy — a META key, a dotted path or a
callable —, ``RATELIMIT_IPV4_MASK``, ``RATELIMIT_IPV6_MASK``: a /64 is one
caller by default), so a site configures it once. The code is this app's
because django-ratelimit's is private, and because it raises on what a proxy
may well pass on: ``X-Forwarded-For: 203.0.113.7, 10.0.0.1`` (a list), an
empty or garbled value, an empty ``REMOTE_ADDR`` behind a Unix socket. A
limit that raises answers 500; one that skips the caller is off for whoever
can garble a header. So, in order:

1. the configured value, when it is one address;
2. from a list, the last address in it — the one the site's own proxy
   appended (the others are what the caller claimed);
3. ``REMOTE_ADDR``;
4. ``"unknown"``: every such caller shares one counter, so the limit still
   holds (for all of them together) instead of none.

An IPv4-mapped IPv6 address (``::ffff:203.0.113.7``) counts as the IPv4
address it holds: masked as IPv6 (/64), every such caller would share ``::``.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(request: HttpRequest) -> str:
    """The caller's address, masked as configured, or :data:`UNKNOWN` (see the module)."""
    raw = _configured(request)
    address = _one(raw) or _last_of_list(raw)
    if address is None:
        address = _one(request.META.get("REMOTE_ADDR"))
        logger.warning("client IP address unusable (%r): using %s", raw, address or UNKNOWN)
    if address is None:
        return UNKNOWN
    return _masked(address)


def _configured(request: HttpRequest) -> object:
    meta_key = getattr(settings, "RATELIMIT_IP_META_KEY", None)
    try:
        if not meta_key:
            return request.META.get("REMOTE_ADDR")
        if callable(meta_key):
            return meta_key(request)
        if "." in meta_key:
            return import_string(meta_key)(request)
        return request.META.get(meta_key)
    except Exception:  # noqa: BLE001 - a site's callable that fails is no address
        logger.exception("RATELIMIT_IP_META_KEY could not be read")
        return None


def _one(value: object) -> IPAddress | None:
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _last_of_list(value: object) -> IPAddress | None:
    if not isinstance(value, str) or "," not in value:
        return None
    for part in reversed(value.split(",")):
        address = _one(part)
        if address is not None:
            return address
    return None


def _masked(address: IPAddress) -> str:
    if address.version == 6:
        mask = getattr(settings, "RATELIMIT_IPV6_MASK", 64)
    else:
        mask = getattr(settings, "RATELIMIT_IPV4_MASK", 32)
    return str(ipaddress.ip_network(f"{address}/{mask}", strict=False).network_address)
