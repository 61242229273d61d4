from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CiamOtpConfig(AppConfig):
    name = "django_ciam_otp"
    label = "ciam_otp"
    verbose_name = _("One-time passcodes")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks registers the system checks (each configured backend's own among
        # them, through BaseBackend.check: no backend module is imported here);
        # snapshots forgets its copies when rows are saved.
        from . import checks, snapshots  # noqa: F401
