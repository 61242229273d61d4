"""A Celery app for the fast tests: configured from Django settings (eager tasks)."""

from celery import Celery

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
