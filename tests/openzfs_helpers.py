"""Helpers for the tests on the OpenZFS lab: zvol digests, the transfer log, faults on cue."""

from __future__ import annotations

import re
from contextlib import contextmanager

from replication_helpers import sh

SLOW = 300  # seconds: everything is emulated


def zvol_digest(lab, node: str, volume: str) -> str:
    return sh(lab, node, f"udevadm settle; sha256sum /dev/zvol/{volume}").stdout.split()[0]


def last_end(lab, dataset: str) -> str:
    lines = [line for line in sh(lab, "src", "cat /var/log/ovios/repl.log").stdout.splitlines()
             if f" {dataset} " in line and " end " in line]
    return lines[-1]


def sent_bytes(line: str) -> int:
    match = re.search(r" bytes=(\d+)", line)
    if match is None:
        raise ValueError(f"no bytes= in the log line {line!r}")
    return int(match.group(1))


def when_sent(lab, dataset: str, at_least: int, action: str) -> None:
    """Run ``action`` (a shell command; ``$pid`` is the sender's) once the running
    ``zfs send`` of ``dataset`` has written ``at_least`` bytes.

    (The patterns start with a bracket so that they do not match this script itself.)
    """
    script = (
        # the sender, not the size estimate (``zfs send -nvP``) that may run just before it
        f"for i in $(seq 600); do pid=$(for p in $(pgrep -f '[z]fs send.*{dataset}'); do"
        f" tr '\\0' ' ' </proc/$p/cmdline 2>/dev/null | grep -qv -- ' -n' && echo $p; done | head -1);"
        f" [ -n \"$pid\" ] && break; sleep 0.1; done;"
        f" while :; do n=$(sed -n 's/^wchar: //p' /proc/$pid/io 2>/dev/null || echo 0);"
        f" [ \"${{n:-0}}\" -ge {at_least} ] && break; kill -0 $pid 2>/dev/null || exit 3; sleep 0.1; done;"
        f" {action}"
    )
    sh(lab, "src", script)


def kill_transfer_when(lab, dataset: str, at_least: int) -> None:
    """Kill the running run and its sender once the stream passed ``at_least`` bytes."""
    when_sent(lab, dataset, at_least,
               "pkill -KILL -f '[o]vios_shell_retadm.replication.background_send|[o]vios-shell retadm';"
               " kill -KILL $pid")


#: a ``zfs`` first on the nodes' PATH (retadm runs every command with /usr/local/sbin first)
WRAPPER = "/usr/local/sbin/zfs"


@contextmanager
def zfs_fault(lab, node: str, verb: str, action: str):
    """On ``node``, the first ``zfs VERB`` that runs in the block does ``action`` (shell; ``$PPID``
    is the process that ran zfs) instead of its work, then exits 1; every other zfs command
    is the real one.  The wrapper is gone afterwards, whatever happened."""
    sh(lab, node, f"rm -f /run/zfs-fault.done; cat > {WRAPPER} <<'EOF'\n"
                  "#!/bin/sh\n"
                  f"if [ \"$1\" = {verb} ] && [ ! -e /run/zfs-fault.done ]; then\n"
                  f"  touch /run/zfs-fault.done; {action}; exit 1\n"
                  "fi\n"
                  "exec /usr/sbin/zfs \"$@\"\n"
                  f"EOF\nchmod 755 {WRAPPER}")
    try:
        yield
    finally:
        sh(lab, node, f"rm -f {WRAPPER}")
    assert sh(lab, node, "test -e /run/zfs-fault.done && echo hit", check=False).stdout.strip() == "hit", \
        f"the fault on {node}'s 'zfs {verb}' never came"
