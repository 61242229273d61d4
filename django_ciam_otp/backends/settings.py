"""How a backend reads its settings: a keyword argument, else the setting, else a default.

Modelled on django-anymail's ``get_anymail_setting``: a backend's constructor
reads each of its options with :func:`backend_setting`, so one name works both
as a keyword argument (``SMSBackend(sign_name="Acme")``, for tests and for
code that builds a backend itself) and as a setting
(``CIAM_OTP["TENCENT_SMS"]["SIGN_NAME"]``), and the core never has to know a
provider's settings. A backend keeps its settings in a dict of its own under
``CIAM_OTP[<settings_key>]``, or (the built-in backends whose settings predate
that) in top-level ``CIAM_OTP`` keys it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from django.core.exceptions import ImproperlyConfigured

from ..conf import SETTINGS_NAME, otp_settings

if TYPE_CHECKING:
    from .base import BaseBackend


class _Required:
    """The default of a setting that has none: missing, it is a configuration error."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: ``default=REQUIRED``: no default, so a missing (or ``None``) setting is ``ImproperlyConfigured``.
REQUIRED: Final = _Required()


def settings_section(key: str) -> Any:
    """The site's ``CIAM_OTP[key]`` as written (``{}`` when absent), for a backend's checks.

    Not merged over the backend's defaults and not validated: a check wants to
    see exactly what the site wrote, wrong types included.
    """
    return otp_settings.user_settings.get(key, {})


def backend_setting(
    name: str,
    *,
    backend: type[BaseBackend] | BaseBackend,
    kwargs: dict[str, Any],
    default: Any = REQUIRED,
    setting: str | None = None,
) -> Any:
    """The value of option ``name`` (lower case, as a keyword argument) of ``backend``.

    The first of:

    1. ``kwargs[name]``, popped (so the rest can go on to ``super().__init__``);
       ``None`` means "not given", so a caller can pass an optional argument through;
    2. the setting, when the site wrote it (whatever its value):
       ``CIAM_OTP[backend.settings_key][NAME]``, or with ``setting="SMS_FILE_PATH"``
       for a backend without a settings dict, ``CIAM_OTP["SMS_FILE_PATH"]``; ``setting``
       also renames the entry of a settings dict;
    3. ``default``; with none (``REQUIRED``), ``ImproperlyConfigured`` naming the setting.

    A required setting set to ``None`` counts as missing: there is no value to use.
    """
    value = kwargs.pop(name, None)
    if value is not None:
        return value
    key = getattr(backend, "settings_key", None)
    entry = setting or name.upper()
    if key:
        section = settings_section(key)
        if not isinstance(section, dict):
            raise ImproperlyConfigured(f'{SETTINGS_NAME}["{key}"] must be a dict.')
        where = f'{SETTINGS_NAME}["{key}"]["{entry}"]'
    elif setting:
        section = otp_settings.user_settings
        where = f'{SETTINGS_NAME}["{entry}"]'
    else:
        section, where = {}, ""
    if entry in section:
        value = section[entry]
        if value is not None or default is not REQUIRED:
            return value
    if default is not REQUIRED:
        return default
    cls = backend if isinstance(backend, type) else type(backend)
    label = f"{cls.__module__}.{cls.__qualname__}"
    source = f"{where} (or the keyword argument {name}=...)" if where else f"{name}=..."
    raise ImproperlyConfigured(f"{label} needs {source}.")


def read_settings(
    backend: type[BaseBackend] | BaseBackend, kwargs: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    """Every option of ``defaults`` (upper-case keys), each read by :func:`backend_setting`.

    The provider backends keep their options in one dict (``self.config``) that
    the SDK helpers and the checks read with the same keys as the settings; the
    keyword arguments read here are popped, so a constructor calls this before
    handing the rest of ``kwargs`` to ``super().__init__``.
    """
    return {
        key: backend_setting(key.lower(), backend=backend, kwargs=kwargs, default=default)
        for key, default in defaults.items()
    }
