"""The lab's shell scripts (``scripts/*.sh``, package data) and the values handed to them.

The scripts hold no per-node or per-image values: those go into a file of shell variable
assignments (:func:`assignments`) that the script sources, or that is sent ahead of it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from importlib import resources


def script(name: str) -> str:
    """The text of ``scripts/<name>``."""
    return resources.files(__package__).joinpath("scripts", name).read_text()


def assignments(values: Mapping[str, str | int | Sequence[str]]) -> str:
    """Shell variable assignments, one a line, every value quoted.

    A string or number becomes ``NAME=value`` (POSIX sh); a sequence becomes a bash array
    ``NAME=(a b c)``.
    """
    lines = []
    for name, value in values.items():
        if isinstance(value, (str, int)):
            lines.append(f"{name}={shlex.quote(str(value))}")
        else:
            lines.append(f"{name}=({' '.join(shlex.quote(item) for item in value)})")
    return "".join(line + "\n" for line in lines)
