"""drfpasswordless's test user (``tests/models.py`` of its repository), as its README suggests.

``email`` and ``mobile`` are unique and nullable, so each registration by
mobile leaves ``email`` NULL. The unique constraint gives ``mobile`` a b-tree
index on the column itself; drfpasswordless looks users up with
``mobile__iexact`` (``UPPER(mobile::text) = UPPER(%s)`` on PostgreSQL),
which that index cannot serve. Migration 0002 adds ``UPPER(mobile)`` when the
settings ask for it (``BENCH_MOBILE_UPPER_INDEX``).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager
from django.db import models


class User(AbstractBaseUser):
    email = models.EmailField(max_length=255, unique=True, blank=True, null=True)
    email_verified = models.BooleanField(default=False)
    mobile = models.CharField(max_length=17, unique=True, blank=True, null=True)
    mobile_verified = models.BooleanField(default=False)

    objects = BaseUserManager()

    USERNAME_FIELD = "email"
