"""Running this package's Python on the partner node.

The partner's ``python3`` need not be the Python that has this package: ovios-shell may
run from a virtual environment (the lab, ``make install``) or another interpreter.  The
one that surely has it is the one the partner's ``ovios-shell`` console script starts,
named on that script's ``#!`` line, so that is the only one used: a node without
``ovios-shell`` answers with one line and exit status 127.
"""

from __future__ import annotations

_RUN = (
    'set -u; '
    'py=$(sed -n "1s/^#![[:space:]]*//p" "$(command -v ovios-shell)" 2>/dev/null); '
    '[ -n "$py" ] || { echo "ovios-shell is not installed on this node" >&2; exit 127; }; '
    'exec $py "$@"'
)


def python_argv(*args: str) -> list[str]:
    """argv for ``python ARGS`` with the Python behind this node's ``ovios-shell``."""
    return ["sh", "-c", _RUN, "ovios-peer", *args]


def module_argv(module: str, *args: str) -> list[str]:
    """argv for ``python -m module args`` with the partner's ovios-shell's Python."""
    return python_argv("-m", module, *args)
