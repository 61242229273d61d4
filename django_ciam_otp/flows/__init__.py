"""What the package does, one module per flow: send, verify, quotas, provisioning.

The HTTP views, the Celery tasks, the authentication backend and the example
project's pages all call these functions, so each rule is decided in one
place. A send is :func:`send.send_otp`, read top to bottom as named steps,
each in a module named for it:

``shape`` (parse the arguments) → ``policy`` (the auth source's code rules)
→ ``eligibility`` (accounts, is-used, test recipients, where the code goes)
→ ``counting`` (every limit and the pumping monitor, one round trip)
→ ``issuing`` (quota and token row) → ``enqueue`` (the hand-off to delivery,
inside issuing's transaction, so all three happen or none does).
"""

from __future__ import annotations

from .send import SendResult, send_otp
from .verify import VerifyResult, verify_otp

__all__ = ["SendResult", "VerifyResult", "send_otp", "verify_otp"]
