"""Which SMS backends may carry a message to a number, in the order to try them.

A site lists its SMS backends in ``CIAM_OTP["SMS_BACKENDS"]`` (or names one in
``SMS_BACKEND``) and may route numbers by region or prefix
(``SMS_ROUTES``: mainland numbers → Tencent, the rest → Twilio). Each entry
has a name, which is what routes, the token log (``delivery_backend``), the
metrics and the receipts URL (``/otp/receipts/<name>/``) call it, and its own
keyword arguments (``OPTIONS``), so two accounts of one provider can run side
by side, as django-anymail configures several ESPs.

The list is read from settings once per settings change; a backend instance is
built for each delivery (its constructor reads settings and stays cheap).
Malformed entries are reported by ``manage.py check`` (``ciam_otp.E020`` to
``ciam_otp.E022``); here they raise ``ImproperlyConfigured``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..conf import SETTINGS_NAME, otp_settings
from .base import BaseBackend


@functools.cache
def _imported(path: str) -> Any:
    return import_string(path)


@dataclass(frozen=True)
class BackendEntry:
    """One configured SMS backend: its name, class path and keyword arguments."""

    name: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)

    def backend_class(self) -> type[BaseBackend]:
        """The class, imported once per settings (a delivery builds a backend every time)."""
        cls: type[BaseBackend] = _imported(self.path)
        return cls

    def build(self) -> BaseBackend:
        """A new backend instance with this entry's name and options."""
        return self.backend_class()(name=self.name, **dict(self.options))


@dataclass(frozen=True)
class Route:
    """Numbers of ``regions`` or starting with ``prefixes`` go through ``backends``."""

    regions: frozenset[str]
    prefixes: tuple[str, ...]
    backends: tuple[str, ...]

    def matches(self, number: str, region: str | None) -> bool:
        return (region is not None and region in self.regions) or number.startswith(self.prefixes)


#: The longest name a backend may have (the token's ``delivery_backend`` column, the URL).
MAX_NAME_LENGTH = 64


def _entry(raw: Any, position: int) -> BackendEntry:
    where = f'{SETTINGS_NAME}["SMS_BACKENDS"][{position}]'
    path: Any
    name: Any
    options: Any
    if isinstance(raw, str):
        path, name, options = raw, None, {}
    elif isinstance(raw, dict):
        unknown = set(raw) - {"NAME", "BACKEND", "OPTIONS"}
        if unknown:
            raise ImproperlyConfigured(f"{where} has unknown keys {sorted(unknown)}.")
        path, name, options = raw.get("BACKEND"), raw.get("NAME"), raw.get("OPTIONS") or {}
        if not isinstance(options, dict):
            raise ImproperlyConfigured(f'{where}["OPTIONS"] must be a dict.')
    else:
        raise ImproperlyConfigured(f"{where} must be a dotted path or a dict.")
    if not isinstance(path, str) or not path:
        raise ImproperlyConfigured(f'{where} needs "BACKEND", a dotted path.')
    if name is not None and (not isinstance(name, str) or not name.isidentifier()):
        raise ImproperlyConfigured(
            f'{where}["NAME"] must be a name of letters, digits and underscores.'
        )
    if name is None:
        try:
            cls = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(f"{where} = {path!r} cannot be imported: {exc}") from exc
        name = cls.configured_name() if hasattr(cls, "configured_name") else path.split(".")[-2]
    if len(name) > MAX_NAME_LENGTH:
        raise ImproperlyConfigured(f"{where}: the name {name!r} is longer than {MAX_NAME_LENGTH}.")
    return BackendEntry(name=name, path=path, options=options)


@functools.cache
def sms_backends() -> tuple[BackendEntry, ...]:
    """Every configured SMS backend, in failover order (``SMS_BACKENDS``, else ``SMS_BACKEND``)."""
    raw = otp_settings.SMS_BACKENDS
    if raw is None:
        raw = [otp_settings.SMS_BACKEND]
    if not isinstance(raw, list | tuple) or not raw:
        raise ImproperlyConfigured(f'{SETTINGS_NAME}["SMS_BACKENDS"] must be a non-empty list.')
    entries = tuple(_entry(item, i) for i, item in enumerate(raw))
    names = [entry.name for entry in entries]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ImproperlyConfigured(
            f'{SETTINGS_NAME}["SMS_BACKENDS"] names {duplicated} more than once: '
            'give each a "NAME" of its own.'
        )
    return entries


def backend_named(name: str) -> BackendEntry | None:
    """The configured SMS backend called ``name``, or ``None``."""
    return next((entry for entry in sms_backends() if entry.name == name), None)


@functools.cache
def routes() -> tuple[Route, ...]:
    """``SMS_ROUTES``, read and checked against the configured names."""
    raw = otp_settings.SMS_ROUTES or []
    if not isinstance(raw, list | tuple):
        raise ImproperlyConfigured(f'{SETTINGS_NAME}["SMS_ROUTES"] must be a list.')
    known = {entry.name for entry in sms_backends()}
    found = []
    for i, item in enumerate(raw):
        where = f'{SETTINGS_NAME}["SMS_ROUTES"][{i}]'
        if not isinstance(item, dict) or set(item) - {"REGIONS", "PREFIXES", "BACKENDS"}:
            raise ImproperlyConfigured(
                f'{where} must be a dict of "REGIONS" or "PREFIXES", and "BACKENDS".'
            )
        # A string is a sequence too: "CN" would be the regions "C" and "N", matching nothing.
        if any(not isinstance(item.get(key) or [], list | tuple) for key in item):
            raise ImproperlyConfigured(f'{where}: "REGIONS", "PREFIXES" and "BACKENDS" are lists.')
        regions = [str(region).upper() for region in item.get("REGIONS") or []]
        prefixes = [str(prefix) for prefix in item.get("PREFIXES") or []]
        backends = list(item.get("BACKENDS") or [])
        if not regions and not prefixes:
            raise ImproperlyConfigured(f'{where} matches nothing: give "REGIONS" or "PREFIXES".')
        unknown_regions = sorted(set(regions) - phonenumbers.SUPPORTED_REGIONS)
        if unknown_regions:
            raise ImproperlyConfigured(
                f'{where}["REGIONS"] names no region of phone numbers: {unknown_regions} '
                '(ISO 3166 codes: "GB", not "UK").'
            )
        if any(not prefix.startswith("+") or not prefix[1:].isdigit() for prefix in prefixes):
            raise ImproperlyConfigured(f'{where}["PREFIXES"] must be E.164 prefixes ("+86").')
        unknown = [name for name in backends if name not in known]
        if not backends or unknown:
            raise ImproperlyConfigured(
                f'{where}["BACKENDS"] must name SMS backends of SMS_BACKENDS '
                f"(unknown: {unknown}, known: {sorted(known)})."
            )
        found.append(Route(frozenset(regions), tuple(prefixes), tuple(backends)))
    return tuple(found)


def route_for(number: str) -> tuple[BackendEntry, ...]:
    """The backends that may carry a message to ``number`` (E.164), in the order to try."""
    entries = sms_backends()
    table = routes()
    if not table:
        return entries
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        region = None
    for route in table:
        if route.matches(number, region):
            by_name = {entry.name: entry for entry in entries}
            return tuple(by_name[name] for name in route.backends)
    return entries


def forget(**kwargs: Any) -> None:
    """Read the lists anew (settings changed)."""
    sms_backends.cache_clear()
    routes.cache_clear()
    _imported.cache_clear()


setting_changed.connect(forget)


#: The check ids of what :func:`check_routing` finds.
E_BACKENDS, E_ROUTES, E_CIRCUIT = "ciam_otp.E020", "ciam_otp.E021", "ciam_otp.E022"


def check_routing() -> list[tuple[str, str]]:
    """What is wrong with ``SMS_BACKENDS``, ``SMS_ROUTES`` and ``SMS_CIRCUIT``: (check id, text).

    The core's ``check_settings`` reports them as errors.
    """
    problems: list[tuple[str, str]] = []
    forget()
    try:
        for entry in sms_backends():
            entry.backend_class()
    except ImproperlyConfigured as exc:
        problems.append((E_BACKENDS, str(exc)))
    except ImportError as exc:
        problems.append((E_BACKENDS, f'{SETTINGS_NAME}["SMS_BACKENDS"]: {exc}'))
    else:
        try:
            routes()
        except ImproperlyConfigured as exc:
            problems.append((E_ROUTES, str(exc)))
    circuit = otp_settings.SMS_CIRCUIT
    bounds = {"FAILURES": (1, 1000), "WINDOW": (1, 86400), "COOL_DOWN": (1, 86400)}
    if not isinstance(circuit, dict) or set(circuit) - set(bounds):
        problems.append((E_CIRCUIT, f'{SETTINGS_NAME}["SMS_CIRCUIT"] takes {sorted(bounds)} only.'))
    else:
        for key, (low, high) in bounds.items():
            value = circuit.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                problems.append(
                    (E_CIRCUIT, f'{SETTINGS_NAME}["SMS_CIRCUIT"]["{key}"] must be {low} to {high}.')
                )
    return problems
