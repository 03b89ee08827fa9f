"""What Lab 1 looks like: node names, addresses, pools, datasets and sample files.

Pure data, no I/O.  Everything else in the lab package builds from this.  The
layout follows the OviOS Replication Guide: the source node ``src``
(192.168.0.149) has the pools ``data`` and ``esx`` with ``data/smbvol`` and
``esx/lun01``; the destination ``dst`` (192.168.0.111) has the pool ``repl``.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_NAME = "ovlab"
DEFAULT_BASE_DIR = Path("/var/lib/ovios-lab")
ENV_NAME = "OVIOS_LAB_NAME"
ENV_DIR = "OVIOS_LAB_DIR"
#: every process the lab starts (holders, daemons) carries NAME:DIRECTORY in this
#: environment variable, so ``down`` finds them even when the state file is gone
ENV_MEMBER = "OVIOS_LAB_MEMBER"

#: size of every pool's (sparse) vdev file, in bytes; a K/M/G suffix is accepted
ENV_VDEV_SIZE = "OVIOS_LAB_VDEV_SIZE"

PREFIX_LEN = 24
DEFAULT_VDEV_SIZE = 256 * 1024 * 1024
MIN_VDEV_SIZE = 64 * 1024 * 1024  # zfs-fuse refuses vdevs under 64 MiB
NODE_IFNAME = "eth0"

# a name is a prefix of interface names ("<name>-src", "<name>-br"): IFNAMSIZ is 16
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,10}$")


class LabError(Exception):
    """A lab operation failed; the message is one line meant for a user."""


def vdev_size(value: str | None = None) -> int:
    """The vdev size: ``$OVIOS_LAB_VDEV_SIZE`` (bytes, or with a K/M/G suffix) or 256 MiB."""
    text = (os.environ.get(ENV_VDEV_SIZE, "") if value is None else value).strip()
    if not text:
        return DEFAULT_VDEV_SIZE
    match = re.fullmatch(r"(\d+)([KMG]?)(?:i?B)?", text, re.IGNORECASE)
    if not match:
        raise LabError(f"invalid {ENV_VDEV_SIZE} {text!r}: use bytes or a K/M/G suffix, e.g. 4G")
    size = int(match.group(1)) * 1024 ** " KMG".index((match.group(2) or " ").upper())
    if size < MIN_VDEV_SIZE:
        raise LabError(f"{ENV_VDEV_SIZE}={text} is too small: zfs-fuse refuses vdevs under 64 MiB")
    return size


VDEV_SIZE = vdev_size()


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise LabError(
            f"invalid lab name {name!r}: use 1-11 letters, digits, '-' or '_' "
            "(it prefixes interface names)"
        )
    return name


def default_name() -> str:
    return os.environ.get(ENV_NAME) or DEFAULT_NAME


def default_dir(name: str) -> Path:
    value = os.environ.get(ENV_DIR)
    return Path(value) if value else DEFAULT_BASE_DIR / name


def _pseudo_random(size: int, seed: str) -> bytes:
    """Deterministic incompressible bytes (a stand-in for a LUN's content)."""
    return random.Random(seed).randbytes(size)


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # pool/fs
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content

    @property
    def mountpoint(self) -> str:
        return "/" + self.name


@dataclass(frozen=True)
class PoolSpec:
    name: str
    datasets: tuple[DatasetSpec, ...] = ()

    @property
    def mountpoint(self) -> str:
        return "/" + self.name

    @property
    def dataset_names(self) -> tuple[str, ...]:
        return (self.name, *(d.name for d in self.datasets))


@dataclass(frozen=True)
class NodeSpec:
    name: str
    address: str
    pools: tuple[PoolSpec, ...]

    @property
    def cidr(self) -> str:
        return f"{self.address}/{PREFIX_LEN}"

    @property
    def dataset_names(self) -> tuple[str, ...]:
        return tuple(n for p in self.pools for n in p.dataset_names)


SMBVOL_FILES: dict[str, bytes] = {
    "README.txt": b"OviOS lab: sample SMB volume data/smbvol\n",
    "hello.txt": b"hello from src\n",
    "docs/report.txt": b"quarterly report\n" * 64,
    "docs/notes.md": b"# notes\n\n- replicate data/smbvol to dst:repl\n",
}
LUN01_FILES: dict[str, bytes] = {
    "lun01.img": _pseudo_random(1024 * 1024, "esx/lun01"),
}

NODES: tuple[NodeSpec, ...] = (
    NodeSpec(
        name="src",
        address="192.168.0.149",
        pools=(
            PoolSpec("data", (DatasetSpec("data/smbvol", SMBVOL_FILES),)),
            PoolSpec("esx", (DatasetSpec("esx/lun01", LUN01_FILES),)),
        ),
    ),
    NodeSpec(name="dst", address="192.168.0.111", pools=(PoolSpec("repl"),)),
)
NODE_NAMES: tuple[str, ...] = tuple(n.name for n in NODES)


def node_spec(name: str) -> NodeSpec:
    for spec in NODES:
        if spec.name == name:
            return spec
    raise LabError(f"unknown node {name!r} (nodes: {', '.join(NODE_NAMES)})")


def interface_names(lab_name: str) -> dict[str, str]:
    """Interface names in the lab's switch namespace: the bridge and one veth per node."""
    names = {"bridge": f"{lab_name}-br"}
    names.update({n: f"{lab_name}-{n}" for n in NODE_NAMES})
    for ifname in names.values():
        assert len(ifname) <= 15, ifname
    return names
