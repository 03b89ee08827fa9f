"""A node's pools: create them as the spec says, and bring them back to that state.

ZFS commands run inside the node (through a callable that runs a shell script
there); the sample files are read and written from outside, through the node's
root as seen in ``/proc/<holder>/root``.

Reset policy: a pool that differs from the spec in anything but file contents
(extra datasets or snapshots, holds, local or received properties, unmounted or
missing datasets) is destroyed and created again: zfs-fuse cannot list hold tags
(``zfs holds`` needs the missing pyzfs), so a held snapshot could not be released
by name anyway, and re-creating a small pool costs ~0.1 s.  A pool whose only
change is in files gets its files rewritten.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .nodefiles import NodePaths
from .spec import VDEV_SIZE, DatasetSpec, LabError, NodeSpec, PoolSpec

RunScript = Callable[[str], subprocess.CompletedProcess]
SEP = "@@ovios-lab@@"


@dataclass
class ZfsView:
    """What a node's ZFS looks like right now."""

    pools: set[str] = field(default_factory=set)
    datasets: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (type, mounted)
    local_props: dict[str, list[str]] = field(default_factory=dict)  # name -> properties

    SCRIPT = (f"zpool list -H -o name; echo {SEP}; zfs list -H -t all -o name,type,mounted; "
              f"echo {SEP}; zfs get -H -s local,received,temporary -o name,property all")

    @classmethod
    def parse(cls, text: str) -> ZfsView:
        parts = text.split(SEP + "\n")
        if len(parts) != 3:
            raise LabError(f"unexpected zfs output: {text[:200]!r}")
        view = cls()
        view.pools = {line for line in parts[0].splitlines() if line}
        for line in parts[1].splitlines():
            fields = line.split("\t")
            if len(fields) == 3:
                view.datasets[fields[0]] = (fields[1], fields[2])
        for line in parts[2].splitlines():
            fields = line.split("\t")
            if len(fields) == 2:
                view.local_props.setdefault(fields[0], []).append(fields[1])
        return view

    def in_pool(self, pool: str) -> dict[str, tuple[str, str]]:
        return {n: v for n, v in self.datasets.items()
                if n == pool or n.startswith((pool + "/", pool + "@"))}


def expected_tree(dataset: str, files: dict[str, bytes], children: list[str]) -> dict[str, bytes | None]:
    """Relative path -> content (None for a directory) of a dataset's mounted tree."""
    tree: dict[str, bytes | None] = {}
    for rel, content in files.items():
        parts = rel.split("/")
        for i in range(1, len(parts)):
            tree["/".join(parts[:i])] = None
        tree[rel] = content
    for child in children:  # mountpoints of child datasets
        tree[child[len(dataset) + 1:]] = None
    return tree


def actual_tree(root: Path, skip: set[str]) -> dict[str, bytes | None]:
    tree: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for d in list(dirnames):
            tree[rel_dir + d] = None
            if rel_dir + d in skip:
                dirnames.remove(d)
        for f in filenames:
            path = os.path.join(dirpath, f)
            tree[rel_dir + f] = b"<symlink>" if os.path.islink(path) else Path(path).read_bytes()
    return tree


class NodeZfs:
    """Creates and resets the pools of one node."""

    def __init__(self, spec: NodeSpec, paths: NodePaths, run_script: RunScript,
                 root: Callable[[str], Path]):
        self.spec = spec
        self.paths = paths
        self.run_script = run_script
        self.root = root  # node path -> path on the machine

    # -- creation -------------------------------------------------------------------

    def make_vdevs(self) -> None:
        for pool in self.spec.pools:
            vdev = self.paths.vdev(pool.name)
            vdev.parent.mkdir(parents=True, exist_ok=True)
            with open(vdev, "wb") as fh:
                fh.truncate(VDEV_SIZE)  # sparse

    def create_all(self) -> None:
        self._script("\n".join(self._create_commands(p) for p in self.spec.pools))
        for pool in self.spec.pools:
            self.write_files(pool)

    def _create_commands(self, pool: PoolSpec, destroy_first: bool = False) -> str:
        lines = []
        if destroy_first:
            lines.append(self._destroy_command(pool.name))
        lines.append(f"zpool create -f {shlex.quote(pool.name)} {shlex.quote(str(self.paths.vdev(pool.name)))}")
        lines += [f"zfs create {shlex.quote(d.name)}" for d in pool.datasets]
        return "\n".join(lines)

    @staticmethod
    def _destroy_command(pool: str) -> str:
        """Destroy a pool if it exists; retried, because right after a ``zfs receive``
        zfs-fuse answers "pool is busy" for about 0.1 s."""
        name = shlex.quote(pool)
        return (f"for i in $(seq 50); do zpool list {name} >/dev/null 2>&1 || break; "
                f"zpool destroy -f {name} 2>/dev/null && break; sleep 0.1; done")

    def write_files(self, pool: PoolSpec) -> None:
        for ds in pool.datasets:
            base = self.root(ds.mountpoint)
            for rel, content in ds.files.items():
                path = base / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)

    # -- reset ----------------------------------------------------------------------

    def observe(self) -> ZfsView:
        return ZfsView.parse(self._script(ZfsView.SCRIPT, check=False).stdout)

    def reset(self) -> list[str]:
        """Bring the pools back to the spec; returns a list of what was done."""
        view = self.observe()
        actions, script = [], []
        wanted = {p.name for p in self.spec.pools}
        for extra in sorted(view.pools - wanted):
            script.append(self._destroy_command(extra))
            actions.append(f"destroyed pool {extra}")
        rebuilt = [p for p in self.spec.pools if not self._pool_pristine(p, view)]
        for pool in rebuilt:
            script.append(self._create_commands(pool, destroy_first=True))
            actions.append(f"re-created pool {pool.name}")
        if script:
            self._script("\n".join(script))
        for pool in self.spec.pools:
            if pool in rebuilt:
                self.write_files(pool)
            elif self._fix_files(pool):
                actions.append(f"restored files of pool {pool.name}")
        return actions

    def _pool_pristine(self, pool: PoolSpec, view: ZfsView) -> bool:
        if pool.name not in view.pools:
            return False
        present = view.in_pool(pool.name)
        if set(present) != set(pool.dataset_names):
            return False  # extra or missing datasets, or snapshots
        if any(kind != "filesystem" or mounted != "yes" for kind, mounted in present.values()):
            return False
        return not any(view.local_props.get(name) for name in present)

    def _fix_files(self, pool: PoolSpec) -> bool:
        fixed = False
        datasets: list[DatasetSpec] = [DatasetSpec(pool.name), *pool.datasets]
        names = [d.name for d in datasets]
        for ds in datasets:
            children = [n for n in names if n.startswith(ds.name + "/") and "/" not in n[len(ds.name) + 1:]]
            want = expected_tree(ds.name, ds.files, children)
            base = self.root(ds.mountpoint)
            skip = {c[len(ds.name) + 1:] for c in children}
            if actual_tree(base, skip) == want:
                continue
            fixed = True
            for entry in os.listdir(base):
                if entry in skip:
                    continue
                path = base / entry
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            for rel, content in ds.files.items():
                path = base / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
        return fixed

    def _script(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        result = self.run_script(("set -e\n" if check else "") + script)
        if check and result.returncode != 0:
            raise LabError(f"{self.spec.name}: zfs setup failed: "
                           f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
        return result
