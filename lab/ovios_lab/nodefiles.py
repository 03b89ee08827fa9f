"""A node's private files.

Two kinds (see :class:`.rootfs.Override`):

- ``/etc`` and ``/root/.ssh`` are *copies* on a tmpfs in the node: the machine's
  ``/etc`` (without its ssh host keys and cron jobs) with the node's own files laid
  over it, and the node's root ssh keys.  The node may change anything there
  (``useradd``, ``sshd_config``, ``/etc/ovios`` …) without touching the machine;
  reset puts them back from a pristine copy the holder keeps in the node.
- ``/var/log``, ``/var/lib/zfs``, ``/var/spool/cron``, the pool mountpoints and a
  stand-in ``sendmail`` are *binds* of directories of the lab directory.
- ``/usr/bin`` is an *overlay*: the machine's, with the node's own ``ovios-shell`` (see
  :data:`SHELL_LINK`).

This module writes the node's own files into ``nodes/<node>/fs/<path>`` before the
node starts (ssh host and root keys exchanged between the nodes, known_hosts,
/etc/hosts, an empty crontab …) and, for reset, compares and restores the copies.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .rootfs import PRISTINE, Override, copy_tree
from .spec import LabError, NodeSpec

#: node path -> globs (relative to it) removed from the machine's copy
COPIED: dict[str, tuple[str, ...]] = {
    # the node has its own ssh host keys and product state; the machine's cron jobs stay behind
    "/etc": ("ssh/ssh_host_*", "cron.d/*", "ovios/*"),
    "/root/.ssh": (),
}
#: node paths bind-mounted from the lab directory: "dir" or "file"
BOUND: dict[str, str] = {
    "/var/log": "dir",
    "/var/lib/zfs": "dir",
    "/var/spool/cron": "dir",
    # cron mails job output; the node's "sendmail" appends it to /var/log/lab-mail.log
    "/usr/sbin/sendmail": "file",
    # root's shell start-up files: a node is not the machine's developer account (whose
    # .bashrc may run pyenv & co. on every ssh command, slowly, or hang on its locks)
    "/root/.bashrc": "file",
    "/root/.profile": "file",
}
#: The path the Replication Guide's cron lines run.  In a node it is a link to the console
#: script of the checkout that brought the lab up (the script's shebang names that checkout's
#: Python), whatever the machine's own link names or comes to name while the lab is up: two
#: checkouts' labs on one machine each run their own code.
SHELL_LINK = "/usr/bin/ovios-shell"

#: emptied by reset
WIPED = ("/etc/ovios", "/var/log/ovios", "/run/ovios", "/var/spool/cron/crontabs")

CRONTAB = """\
# /etc/crontab of an ovios lab node (the machine's jobs do not run here)
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
"""
SENDMAIL = """\
#!/bin/sh
# ovios lab: mail (cron job output) is appended to a log instead of being delivered
{ echo "--- $(date -Is) sendmail $*"; cat; echo; } >> /var/log/lab-mail.log
"""
ROOT_RC = """\
# root's shell start-up on an ovios lab node: nothing to set up
"""
SSHD_DROPIN = """\
# ovios lab node: its own host key only
HostKey /etc/ssh/ssh_host_ed25519_key
"""


@dataclass(frozen=True)
class NodePaths:
    """Where a node's things live in the lab directory."""

    root: Path  # <labdir>/nodes/<node>

    @property
    def fs(self) -> Path:
        return self.root / "fs"

    @property
    def stage(self) -> Path:
        return self.root / "rootfs"

    @property
    def vdevs(self) -> Path:
        return self.root / "vdev"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def holder_spec(self) -> Path:
        return self.root / "holder.json"

    def private(self, node_path: str) -> Path:
        """The lab-directory side of a node path: live for binds, the layer for copies."""
        return self.fs / node_path.lstrip("/")

    def vdev(self, pool: str) -> Path:
        return self.vdevs / f"{pool}.img"


def overrides(spec: NodeSpec, paths: NodePaths) -> list[Override]:
    """The node's private paths, as the holder mounts them."""
    result = [Override(p, "copy", p if os.path.isdir(p) else None, layers=(str(paths.private(p)),),
                       clear=clear)
              for p, clear in COPIED.items()]
    result += [Override(p, "bind", str(paths.private(p))) for p in BOUND]
    result += [Override(pool.mountpoint, "bind", str(paths.private(pool.mountpoint)))
               for pool in spec.pools]
    result.append(Override("/run", "tmpfs", mode=0o755))
    bin_dir = os.path.dirname(SHELL_LINK)
    result.append(Override(bin_dir, "overlay", layers=(str(paths.private(bin_dir)),)))
    return result


# -- writing the files ----------------------------------------------------------------


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _mkdir(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def prepare(specs: tuple[NodeSpec, ...], node_paths: dict[str, NodePaths]) -> None:
    """Write every node's private files; keys are exchanged between all nodes."""
    for spec in specs:
        _prepare_node(spec, node_paths[spec.name], specs)
    procs = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
             for spec in specs for cmd in _keygen_commands(node_paths[spec.name], spec.name)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise LabError(f"ssh-keygen failed: {err.decode(errors='replace').strip()}")
    for spec in specs:
        _exchange_keys(spec, node_paths, specs)


def _keygen_commands(paths: NodePaths, node: str) -> list[list[str]]:
    keys = (paths.private("/etc/ssh") / "ssh_host_ed25519_key", paths.private("/root/.ssh") / "id_ed25519")
    return [["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{node}", "-f", str(k)]
            for k in keys]


def _prepare_node(spec: NodeSpec, paths: NodePaths, specs: tuple[NodeSpec, ...]) -> None:
    for directory in (paths.fs, paths.vdevs, paths.logs, paths.stage):
        directory.mkdir(parents=True, exist_ok=True)
    # /etc layer (over the machine's /etc, see COPIED); directories keep the machine's modes
    etc = _mkdir(paths.private("/etc"), stat.S_IMODE(os.stat("/etc").st_mode))
    _mkdir(etc / "ssh")
    _write(etc / "ssh" / "sshd_config.d" / "ovios-lab.conf", SSHD_DROPIN)
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    hosts += "".join(f"{s.address}\t{s.name}\n" for s in specs)
    _write(etc / "hosts", hosts)
    _write(etc / "hostname", spec.name + "\n")
    _write(etc / "crontab", CRONTAB)
    _mkdir(etc / "cron.d")
    _mkdir(etc / "ovios")
    _mkdir(paths.private("/root/.ssh"), 0o700)
    # /usr/bin's layer (over the machine's, see overrides)
    own_shell = Path(sys.executable).parent / "ovios-shell"
    if not own_shell.exists():
        raise LabError(f"{own_shell} not found: install the package (pip install -e .) first")
    shell_link = paths.private(SHELL_LINK)
    _mkdir(shell_link.parent)
    with contextlib.suppress(FileNotFoundError):
        shell_link.unlink()
    shell_link.symlink_to(own_shell)
    # bound directories
    _write(paths.private("/usr/sbin/sendmail"), SENDMAIL, 0o755)
    for rc in ("/root/.bashrc", "/root/.profile"):
        _write(paths.private(rc), ROOT_RC)
    _mkdir(paths.private("/var/lib/zfs"))
    _mkdir(paths.private("/var/log/ovios"))
    spool = _mkdir(paths.private("/var/spool/cron/crontabs"), 0o1730)
    os.chown(spool, 0, _crontab_gid())
    os.chmod(spool, 0o1730)
    for pool in spec.pools:
        _mkdir(paths.private(pool.mountpoint))


def _crontab_gid() -> int:
    try:
        return grp.getgrnam("crontab").gr_gid
    except KeyError:
        return 0


def _exchange_keys(spec: NodeSpec, node_paths: dict[str, NodePaths], specs) -> None:
    """Every other node's root key may log in here; every other node's host key is known."""
    ssh_dir = node_paths[spec.name].private("/root/.ssh")
    authorized, known = [], []
    for peer in specs:
        if peer.name == spec.name:
            continue
        peer_paths = node_paths[peer.name]
        authorized.append((peer_paths.private("/root/.ssh") / "id_ed25519.pub").read_text().strip())
        host_key = (peer_paths.private("/etc/ssh") / "ssh_host_ed25519_key.pub").read_text().split()
        known.append(f"{peer.name},{peer.address} {host_key[0]} {host_key[1]}")
    _write(ssh_dir / "authorized_keys", "\n".join(authorized) + "\n", 0o600)
    _write(ssh_dir / "known_hosts", "\n".join(known) + "\n", 0o644)


# -- reset ------------------------------------------------------------------------------


def signature(path: Path) -> list[tuple]:
    """Names, types, modes, owners, sizes, mtimes (and link targets) of a tree.

    Copies are made with ``cp -a``, which keeps mtimes, so any change shows up."""
    entries = []

    def describe(p: Path, rel: str) -> None:
        st = p.lstat()
        link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
        entries.append((rel, st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, link))
        if stat.S_ISDIR(st.st_mode):
            for child in sorted(os.listdir(p)):
                describe(p / child, f"{rel}/{child}")

    try:
        describe(path, ".")
    except FileNotFoundError:
        return [("missing",)]
    return entries


def restore_copies(node_root: Callable[[str], Path]) -> list[str]:
    """Put the node's changed copies (/etc, /root/.ssh) back from their pristine copies.

    ``node_root`` maps a node path to the machine's path for it.  Returns the node
    paths that had changed.
    """
    changed = []
    for node_path in COPIED:
        live, pristine = node_root(node_path), node_root(PRISTINE + node_path)
        if signature(live) == signature(pristine):
            continue
        changed.append(node_path)
        empty_dir(live)
        copy_tree(pristine, live)
    return changed


def empty_dir(path: Path) -> bool:
    """Remove a directory's contents, keep the directory. True if anything was removed."""
    try:
        children = list(path.iterdir())
    except FileNotFoundError:
        return False
    for child in children:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
    return bool(children)
