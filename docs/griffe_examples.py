"""A Griffe extension: docstring ``Example:`` sections are rendered as examples.

Google style spells the section ``Examples:``; our docstrings say ``Example:`` where there
is one. Griffe would render that as a plain admonition, whose ``>>>`` lines Markdown reads
as block quotes; renamed, they become highlighted interpreter sessions.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SECTION = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` to ``Examples:`` in every docstring that Griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Called for every object Griffe loads: modules, classes, functions, attributes."""
        if obj.docstring is not None:
            obj.docstring.value = _SECTION.sub(r"\1Examples:", obj.docstring.value)
