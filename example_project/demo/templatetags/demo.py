"""Template tags of the demo pages."""

from __future__ import annotations

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

register = template.Library()


@register.simple_tag
def countdown_units() -> SafeString:
    """The words demo.js counts down with (``27 seconds``, ``3 minutes``), in the page's language.

    The same rounding as :func:`example_project.demo.errors.wait_text`; ``[one, other]``
    per unit, ``%(n)d`` standing for the number.
    """
    units = {
        unit: [ngettext(one, other, n) for n in (1, 2)]
        for unit, one, other in (
            ("s", "%(n)d second", "%(n)d seconds"),
            ("m", "%(n)d minute", "%(n)d minutes"),
            ("h", "%(n)d hour", "%(n)d hours"),
        )
    }
    return json_script(units, "demo-units")
