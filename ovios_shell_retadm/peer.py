"""Running this package's own modules on the partner node.

The partner's ``python3`` need not be the Python that has this package: ovios-shell may
run from a virtual environment (the lab) or another interpreter.  The one that surely
has it is the one ``/usr/bin/ovios-shell`` starts (the path cron uses, as the guide
says), named on that script's ``#!`` line.
"""

from __future__ import annotations

OVIOS_SHELL = "/usr/bin/ovios-shell"

_RUN = ('py=$(sed -n "1s/^#! *//p" ' + OVIOS_SHELL + ' 2>/dev/null); '
        'exec ${py:-python3} -m "$0" "$@"')


def module_argv(module: str, *args: str) -> list[str]:
    """argv for ``python -m module args`` with the partner's ovios-shell's Python."""
    return ["sh", "-c", _RUN, module, *args]
