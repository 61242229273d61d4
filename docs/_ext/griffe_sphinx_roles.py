"""Griffe extension for the API reference: Sphinx roles in docstrings become inline code.

The package's docstrings cross-reference with reST roles
(``:func:`~django_ciam_otp.flows.verify_otp```), which Markdown would show
as they are typed. Each becomes inline code naming the target (only its last
part with ``~``), which reads the same in ``help()`` and on the docs site.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|exc|attr|data|mod|obj|const):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_plain, obj.docstring.value)
