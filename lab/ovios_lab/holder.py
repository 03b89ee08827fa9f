"""The process that holds a lab namespace open.

Started as ``unshare --mount --net --uts --propagation private -- python -m
ovios_lab.holder SPEC.json`` (for a node) or ``unshare --net -- …`` (for
the lab's switch).  A node holder assembles the node's root filesystem (see
:mod:`.rootfs`), pivots into it, sets the hostname, reports ``ok`` on the ready
pipe whose fd number is in the spec, and then sleeps until killed.  Everything
else (addresses, daemons) is done from outside with ``nsenter -t PID -m -n -u``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

from .rootfs import Override, RootfsBuilder, RootfsPlan

#: directories created in the node's fresh /run (zfs-fuse exits silently without /run/lock)
RUN_DIRS = {"lock": 0o1777, "lock/subsys": 0o755, "sshd": 0o755, "zfs": 0o755, "ovios": 0o755}


def setup_node(spec: dict) -> None:
    plan = RootfsPlan.make([Override.from_json(o) for o in spec["overrides"]])
    builder = RootfsBuilder(plan, spec["stage"])
    builder.build()
    builder.pivot()
    for name, mode in RUN_DIRS.items():
        path = Path("/run") / name
        path.mkdir(exist_ok=True)
        os.chmod(path, mode)
    if not os.path.lexists("/run/shm"):
        os.symlink("/dev/shm", "/run/shm")
    socket.sethostname(spec["hostname"])
    os.chdir("/root")  # commands entered with ``nsenter -w`` start in root's home


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    ready = os.fdopen(int(spec["ready_fd"]), "w")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    os.chdir("/")
    try:
        if spec["role"] == "node":
            setup_node(spec)
    except Exception as exc:  # noqa: BLE001 - reported to the lab, which turns it into a LabError
        ready.write(f"error {type(exc).__name__}: {exc}\n")
        ready.close()
        return 1
    ready.write(f"ok {os.getpid()}\n")
    ready.close()
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
