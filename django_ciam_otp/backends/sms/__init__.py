"""SMS backends: each module exports ``SMSBackend``, like ``django.core.mail.backends``."""
