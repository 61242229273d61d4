"""drfpasswordless with the index its look-up needs: ``UPPER(mobile)`` (see drfpl_users 0002)."""

from __future__ import annotations

from .drfpasswordless_settings import *  # noqa: F403

BENCH_MOBILE_UPPER_INDEX = True
