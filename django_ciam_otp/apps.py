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
        # snapshots forgets its copies when rows are saved. Metrics are created
        # now, not at the first send, so a scrape shows their series from the
        # start (at zero); prometheus-client is not imported when they are off.
        from . import checks, metrics, snapshots  # noqa: F401

        metrics.decide()
