"""``/usr/bin/ovios-shell``: the path the Replication Guide puts in crontabs.

Cron runs jobs with ``PATH=/usr/bin:/bin``, so the console script of the Python the
package is installed in (under pyenv here) must be reachable as
``/usr/bin/ovios-shell``.  A symlink to the real script (not a pyenv shim) does it;
the script's own shebang names the right interpreter.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .spec import LabError

LINK = Path("/usr/bin/ovios-shell")


def console_script(name: str = "ovios-shell") -> Path:
    """The console script installed beside the running interpreter."""
    return Path(sys.executable).parent / name


def ensure_ovios_shell_link(link: Path = LINK) -> Path:
    """Make ``link`` a symlink to the running Python's ``ovios-shell``; return the target.

    An existing symlink pointing elsewhere is replaced; a regular file is left alone
    (someone installed the shell there on purpose).
    """
    target = console_script()
    if not target.exists():
        raise LabError(f"{target} not found: install the package (pip install -e .) first")
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return target
    elif link.exists():
        return target
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return target
