"""The base class every SMS backend inherits.

Providers differ only in how a finished text reaches a phone, so the base
class owns everything else (as django-anymail's ``BaseEmailBackend`` does):
it renders the text from the overridable templates, in the language stored on
the token, and hands it to one hook, :meth:`BaseSMSBackend.send_text`. A new
provider therefore cannot forget the translation or a site's template
override, and the tests of one contract (``tests/backends/contract.py``) hold
for every backend.
"""

from __future__ import annotations

from ... import rendering
from ..base import Accepted, BaseBackend, OTPMessage


class BaseSMSBackend(BaseBackend):
    """Render the SMS text, then let the subclass deliver it.

    Subclasses implement :meth:`send_text`. A provider that sends a template id
    plus parameters instead of free text (Tencent Cloud SMS, for one) overrides
    :meth:`send` itself and may ignore the rendered text.
    """

    def send(self, message: OTPMessage) -> str | Accepted:
        """Deliver ``message`` as one SMS; return the provider's message id (or an ``Accepted``)."""
        text = self.render_text(message)
        return self.send_text(message.recipient, text, message)

    def render_text(self, message: OTPMessage) -> str:
        """The text to send; a hook so a backend can add e.g. a signature."""
        return rendering.render_sms_text(message)

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str | Accepted:
        """Send ``text`` to ``phone_number`` (E.164); return the provider's message id.

        ``message`` is passed along for providers that need more than the text
        (the usage to pick a template, the token id for a callback reference).
        Raise :class:`~django_ciam_otp.backends.base.TransientDeliveryError` or
        :class:`~django_ciam_otp.backends.base.PermanentDeliveryError` on
        failure; any other exception is treated as transient.
        """
        raise NotImplementedError("SMS backends must implement send_text()")
