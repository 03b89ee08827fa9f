"""``/usr/bin/ovios-shell``: the path the Replication Guide puts in crontabs.

Cron runs jobs with ``PATH=/usr/bin:/bin``, so the console script of the Python the
package is installed in (the checkout's venv) must be reachable as
``/usr/bin/ovios-shell``.  ``make install`` links it there; the script's own shebang
names the right interpreter.

A lab node does not run whatever the machine's link names: it mounts the console script
of the checkout that brought the lab up over the file the link names (:func:`node_shell`),
so two checkouts' labs on one machine each run their own code.
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
    """Make sure ``link`` names an existing file, linking it to the running Python's
    ``ovios-shell`` when it is missing or dangling; return the running Python's script.

    A link to another checkout's script, or a regular file (someone installed the shell
    there on purpose), is left alone: the nodes mount their own over it (:func:`node_shell`).
    """
    target = console_script()
    if not target.exists():
        raise LabError(f"{target} not found: install the package (pip install -e .) first")
    if link.exists():  # (follows the link: False when it dangles)
        return target
    if link.is_symlink():
        link.unlink()
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return target


def node_shell(link: Path = LINK) -> tuple[str, str]:
    """(the node path to mount over, the script to mount there): the file ``link`` names,
    which :func:`ensure_ovios_shell_link` made sure exists, and the running Python's script.

    A bind mount over the link itself would follow it from outside the node's root, so the
    mount goes on the file it names, as the node sees it."""
    return os.path.realpath(link), str(console_script())
