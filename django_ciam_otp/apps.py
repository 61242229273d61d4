from importlib import import_module

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CiamOtpConfig(AppConfig):
    name = "django_ciam_otp"
    label = "ciam_otp"
    verbose_name = _("One-time passcodes")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks registers the system checks; snapshots forgets its copies when rows are saved.
        from . import checks, snapshots  # noqa: F401
        from .conf import otp_settings

        # A backend registers its own checks when its module is imported (the Tencent
        # one adds a database check): import the configured backends' modules now,
        # before any check runs. Providers' SDKs stay unimported until first use.
        for name in ("SMS_BACKEND", "EMAIL_BACKEND"):
            path = getattr(otp_settings, name, None)
            if isinstance(path, str) and "." in path:
                try:
                    import_module(path.rpartition(".")[0])
                except Exception:  # noqa: BLE001, S110 - E003 reports a path that cannot be imported
                    pass
