"""WSGI entry of the peers (gunicorn ``bench.peers.wsgi:application``).

The peer's settings module comes from ``DJANGO_SETTINGS_MODULE`` (the harness
sets it); unlike ``example_project.wsgi`` this imports no Celery app.
"""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
