"""The index drfpasswordless's look-up needs, when the settings ask for it.

drfpasswordless finds a user with ``User.objects.get(mobile__iexact=alias)``,
which Django writes on PostgreSQL as ``UPPER("drfpl_users_user"."mobile"::text)
= UPPER(%s)``. The unique constraint's index is on ``mobile`` itself and
cannot serve it: as shipped, every request scans the user table. An index on
``UPPER(mobile)`` (PostgreSQL stores it as ``upper((mobile)::text)``, the very
expression of the query) turns that into an index look-up. The bench measures
drfpasswordless both ways (``BENCH_MOBILE_UPPER_INDEX``, see
``drfpasswordless_indexed_settings``); ``bench/peers/setup.py`` checks the plan.
"""

from django.conf import settings
from django.db import migrations

INDEX = "drfpl_users_user_mobile_upper"


def create(apps, schema_editor):
    if getattr(settings, "BENCH_MOBILE_UPPER_INDEX", False):
        schema_editor.execute(f"CREATE INDEX {INDEX} ON drfpl_users_user (UPPER(mobile))")


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("drfpl_users", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
