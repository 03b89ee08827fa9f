"""A node's root filesystem: the machine's tree with a few private paths.

A node sees the machine's files (``/usr``, ``/work``, the Python under ``/root/.pyenv`` …)
but has its own ``/run``, ``/etc``, ``/root/.ssh``, ``/var/log``, pool mountpoints
(``/data``) and so on (see :class:`Override`).  Some of those paths do not exist on
the machine (``/root/.ssh``, ``/data``) and a mount needs an existing mountpoint, so
creating them on the shared disk would leak into the machine and into other labs.
Instead, every directory on the way to such a path becomes a *composite*: a
directory on a tmpfs holding one bind mount per entry of the machine's directory,
plus the private entries.  The node's ``/`` is always such a composite (a tmpfs
mounted on a staging directory, then ``pivot_root``-ed into), so whatever the node
creates at the top level (zfs-fuse creates pool mountpoints) stays in the node.
Private paths whose parent is not a composite are mounted over the existing path.

Nothing here touches the machine's mount namespace: it runs inside the node's
fresh, private mount namespace (see :mod:`.holder`).
"""

from __future__ import annotations

import glob
import os
import posixpath
import shutil
import stat
import subprocess
from dataclasses import dataclass

from . import osutil

#: where a node keeps the pristine copies of its ``copy`` overrides
PRISTINE = "/.ovios-lab/pristine"
#: where a node keeps the writable layers of its ``overlay`` overrides
OVERLAYS = "/.ovios-lab/overlay"


@dataclass(frozen=True)
class Override:
    """A private path in the node.

    - ``bind``: a directory or file of the lab directory (``source``) mounted there;
    - ``tmpfs``: an empty tmpfs;
    - ``copy``: a tmpfs holding a copy of ``source`` (a machine directory, optional),
      minus what matches the ``clear`` globs, plus the ``layers`` copied over it.
      The node can change it at will without touching the machine, and a pristine
      copy is kept for :meth:`Lab.reset`;
    - ``overlay``: the machine's directory itself, with the ``layers``' entries laid over
      it (an overlayfs whose writable layer is the node's): one mount, however many
      entries the directory has, for a directory too big to copy (``/usr/bin``).
    """

    path: str  # absolute path inside the node
    kind: str  # "bind", "tmpfs", "copy" or "overlay"
    source: str | None = None
    mode: int = 0o755  # for "tmpfs"
    layers: tuple[str, ...] = ()  # for "copy" and "overlay"
    clear: tuple[str, ...] = ()  # for "copy": globs relative to the path

    def to_json(self) -> dict:
        return {"path": self.path, "kind": self.kind, "source": self.source, "mode": self.mode,
                "layers": list(self.layers), "clear": list(self.clear)}

    @classmethod
    def from_json(cls, value: dict) -> Override:
        return cls(value["path"], value["kind"], value.get("source"), int(value.get("mode", 0o755)),
                   tuple(value.get("layers", ())), tuple(value.get("clear", ())))

    def is_dir(self) -> bool:
        return self.kind in ("tmpfs", "copy", "overlay") or os.path.isdir(self.source or "")

    def can_cover(self) -> bool:
        """True when the machine already has a path of the right type to mount over."""
        if self.is_dir():
            return os.path.isdir(self.path)
        return os.path.isfile(self.path)


def ancestors(path: str) -> list[str]:
    """Proper ancestors of an absolute path, from '/' down."""
    out = []
    parent = posixpath.dirname(path)
    while True:
        out.append(parent)
        if parent == "/":
            break
        parent = posixpath.dirname(parent)
    return list(reversed(out))


@dataclass
class RootfsPlan:
    """Which directories become composites, and which overrides are covers."""

    overrides: dict[str, Override]
    composites: set[str]

    @classmethod
    def make(cls, overrides: list[Override]) -> RootfsPlan:
        by_path = {o.path: o for o in overrides}
        for o in overrides:
            if not o.path.startswith("/") or o.path == "/":
                raise ValueError(f"bad override path {o.path!r}")
            nested = [a for a in ancestors(o.path) if a in by_path]
            if nested:
                raise ValueError(f"override {o.path} is inside override {nested[0]}")
        composites = {"/"}  # the root is always a composite: the node gets its own '/'
        for o in overrides:
            if not o.can_cover():
                composites.update(ancestors(o.path))
        return cls(by_path, composites)

    def covers(self) -> list[Override]:
        """Overrides mounted over an existing path after the tree is assembled."""
        direct = [o for o in self.overrides.values() if posixpath.dirname(o.path) not in self.composites]
        return sorted(direct, key=lambda o: o.path.count("/"))

    def children(self, directory: str) -> set[str]:
        """Names that a composite directory must hold besides the machine's entries."""
        names = set()
        for path in list(self.overrides) + list(self.composites):
            if path != "/" and posixpath.dirname(path) == directory:
                names.add(posixpath.basename(path))
        return names


class RootfsBuilder:
    """Assembles a plan under a staging directory, then makes it the root.

    The pristine copies of ``copy`` overrides go to ``pristine`` + path (a directory
    on the node's root tmpfs).
    """

    def __init__(self, plan: RootfsPlan, stage: str, pristine: str = PRISTINE):
        self.plan = plan
        self.stage = stage.rstrip("/")
        self.pristine = pristine
        self._mount_points: list[str] = []

    def build(self) -> None:
        # read before the staging tmpfs exists, so it never counts as a submount
        self._mount_points = osutil.mount_points()
        osutil.mount("ovios-lab-root", self.stage, "tmpfs", 0, "mode=0755")
        self._fill("/")
        for override in self.plan.covers():
            self._apply(override, self._target(override.path))

    def pivot(self) -> None:
        os.chdir(self.stage)
        osutil.pivot_root(".", ".")
        osutil.umount(".", detach=True)
        os.chdir("/")

    # -- internals -----------------------------------------------------------------

    def _target(self, path: str) -> str:
        return self.stage + path

    def _fill(self, directory: str) -> None:
        try:
            names = set(os.listdir(directory))
        except OSError:
            names = set()
        names |= self.plan.children(directory)
        for name in sorted(names):
            path = posixpath.join(directory, name)
            target = self._target(path)
            if path in self.plan.overrides:
                override = self.plan.overrides[path]
                _make_mountpoint(target, override.is_dir())
                self._apply(override, target)
            elif path in self.plan.composites:
                _make_dir_like(target, path)
                self._fill(path)
            else:
                self._mirror(path, target)

    def _mirror(self, path: str, target: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), target)
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        _make_mountpoint(target, is_dir)
        osutil.bind_mount(path, target, recursive=is_dir and self._has_submounts(path))

    def _has_submounts(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(m.startswith(prefix) for m in self._mount_points)

    def _apply(self, override: Override, target: str) -> None:
        if override.kind == "tmpfs":
            osutil.mount("tmpfs", target, "tmpfs", osutil.MS_NOSUID | osutil.MS_NODEV,
                         f"mode={override.mode:o}")
        elif override.kind == "bind":
            if override.source is None:
                raise ValueError(f"bind override of {override.path} has no source")
            osutil.bind_mount(override.source, target)
        elif override.kind == "copy":
            self._apply_copy(override, target)
        elif override.kind == "overlay":
            self._apply_overlay(override, target)
        else:
            raise ValueError(f"unknown override kind {override.kind!r}")

    def _apply_copy(self, override: Override, target: str) -> None:
        osutil.mount("tmpfs", target, "tmpfs", 0, "mode=0755")
        if override.source:
            copy_tree(override.source, target)
        for pattern in override.clear:
            for path in glob.glob(os.path.join(glob.escape(target), pattern)):
                remove(path)
        for layer in override.layers:
            copy_tree(layer, target)
        pristine = self.stage + self.pristine + override.path
        os.makedirs(pristine, exist_ok=True)
        copy_tree(target, pristine)

    def _apply_overlay(self, override: Override, target: str) -> None:
        # built before the pivot: override.path is still the machine's directory
        layer = self.stage + OVERLAYS + override.path
        upper, work = f"{layer}/upper", f"{layer}/work"
        os.makedirs(upper)
        os.makedirs(work)
        os.chmod(upper, stat.S_IMODE(os.stat(override.path).st_mode))
        for source in override.layers:
            copy_tree(source, upper)
        osutil.mount("overlay", target, "overlay", 0, f"lowerdir={override.path},upperdir={upper},workdir={work}")


def copy_tree(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a directory's contents (and its own owner, mode, times) into an existing one."""
    subprocess.run(["cp", "-a", "--", f"{source}/.", f"{target}/"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def remove(path: str | os.PathLike) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _make_mountpoint(target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        with open(target, "w"):
            pass


def _make_dir_like(target: str, host_path: str) -> None:
    """A composite directory with the machine's directory's owner and mode."""
    os.makedirs(target, exist_ok=True)
    try:
        st = os.stat(host_path)
    except OSError:
        return
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.chown(target, st.st_uid, st.st_gid)
