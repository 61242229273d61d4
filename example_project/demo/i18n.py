"""Sentences of Django's own that the pages show, translated by the demo's catalogue.

Django 5.2's ``MinimumLengthValidator`` says "This password is too short. It
must contain at least %d characters." while its Simplified Chinese catalogue
still translates the earlier wording (``%(min_length)d``), so the sentence
would stay English on a Chinese page. Listing it here puts it in the demo's
catalogue (``makemessages`` finds it); where Django translates it itself, its
translation is used (``django.contrib.auth`` comes first in ``INSTALLED_APPS``).
"""

from __future__ import annotations

from django.utils.translation import ngettext_lazy

DJANGO_SENTENCES = [
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        "n",
    ),
]
