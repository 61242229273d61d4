"""Example project: django-ciam-otp wired into a small site, configured from the environment."""

from .celery import app as celery_app

__all__ = ["celery_app"]
