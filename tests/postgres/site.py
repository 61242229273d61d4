"""The example project's own answer to "who owns an address", for tests that borrow it."""

from __future__ import annotations

from typing import Any


def example_user_settings() -> dict[str, Any]:
    """The ``USER_*`` keys of the example project's ``CIAM_OTP`` (look-up, stored address).

    Read from ``example_project/settings.py`` so these tests run the demo as
    it is configured, whatever keys it needs to find users by phone number
    (its numbers live on ``demo.Profile``, not on the user).
    """
    from example_project import settings

    return {key: value for key, value in settings.CIAM_OTP.items() if key.startswith("USER_")}
