"""Running this package's own modules on the partner node.

The partner's ``python3`` need not be the Python that has this package: ovios-shell may
run from a virtual environment (the lab) or another interpreter.  The one that surely
has it is the one the partner's ``ovios-shell`` console script starts, named on that
script's ``#!`` line; ``python3`` is the fallback.
"""

from __future__ import annotations

_RUN = (
    'set -u; m=$1; shift; '
    'for py in "$(sed -n "1s/^#![[:space:]]*//p" "$(command -v ovios-shell)" 2>/dev/null)" python3; do '
    '[ -n "$py" ] || continue; '
    '$py -c "import $m" </dev/null >/dev/null 2>&1 && exec $py -m "$m" "$@"; '
    'done; echo "ovios_shell_retadm is not installed on this node (no $m)" >&2; exit 127'
)


def module_argv(module: str, *args: str) -> list[str]:
    """argv for ``python -m module args`` with the partner's ovios-shell's Python."""
    return ["sh", "-c", _RUN, "ovios-peer", module, *args]
