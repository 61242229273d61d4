from django.apps import AppConfig


class DrfplUsersConfig(AppConfig):
    name = "bench.peers.drfpl_users"
    label = "drfpl_users"
    default_auto_field = "django.db.models.BigAutoField"
