"""Gather restore's inputs on this node, and carry a plan out.

Inputs: the partner's synced configuration (``/etc/ovios/synced/<node>.json``; with
several partners the caller names one), the local datasets with their ``ovios:*``
properties (one ``zfs get``), and each backend's observation of its service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import files, properties, receive
from ..config.model import ConfigError, Configuration
from ..hosts import HostError, LocalHost
from ..replication.model import ORIGIN_PROPERTY
from ..store import Store, StoreError
from ..zfs import ZfsError, ZfsNode
from . import lio, nfs, samba, users
from .common import ApplyError
from .planner import DatasetInfo, Observed, Partner, Plan

BACKENDS: dict[str, Callable] = {"lio": lio.apply, "samba": samba.apply, "nfs": nfs.apply, "users": users.apply}

_PROPERTIES = ("type", "mountpoint", "mounted", "readonly", properties.LUN_MAPPING, properties.SMB_SHARE,
               properties.NFS_EXPORT, ORIGIN_PROPERTY)


class RestoreError(Exception):
    """One line for the user; ``status`` is the exit status (2: say it differently)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Source:
    config: Configuration | None
    description: str  # one line: where the configuration comes from
    partner: Partner | None = None  # whose it is (None: no synced configuration)


def synced_nodes() -> list[str]:
    try:
        return sorted(p.stem for p in files.synced_dir().glob("*.json") if not p.name.startswith("."))
    except OSError:
        return []


def source(from_node: str | None) -> Source:
    """The synced configuration to apply: the one from ``from_node``, else the only one."""
    nodes = synced_nodes()
    where = files.synced_dir()
    if from_node is not None:
        try:
            path = files.synced_path(from_node)
        except ConfigError as exc:
            raise RestoreError(str(exc), 2) from None
        if not path.exists():
            have = f" (there is: {', '.join(nodes)})" if nodes else ""
            raise RestoreError(f"no configuration synced from {from_node} in {where}{have}")
    elif not nodes:
        return Source(None, f"no synced configuration in {where}: using the replicated datasets' properties only")
    elif len(nodes) > 1:
        raise RestoreError(f"configurations synced from {', '.join(nodes)} are here: say which with --from NODE", 2)
    else:
        path = files.synced_path(nodes[0])
    try:
        config = files.load(path)
    except ConfigError as exc:
        raise RestoreError(str(exc)) from None
    node = config.node or path.stem
    when = f", {config.updated}" if config.updated else ""
    return Source(config, f"using the configuration synced from {node} (generation {config.generation}{when})",
                  partner(node))


def partner(node: str) -> Partner:
    """``node`` with the addresses it is known by here: the one its pushes came from (the
    receiver checked that it is the node's) and those its name resolves to."""
    addresses = set(receive.resolve(node))
    try:
        record = Store().get_sync(node, receive.RECEIVE) or {}
    except StoreError:
        record = {}
    if isinstance(record.get("sender"), str) and record["sender"] != "local":
        addresses.add(receive.address(record["sender"]))
    return Partner(node, frozenset(addresses))


def datasets() -> dict[str, DatasetInfo]:
    """Every local filesystem and zvol with what restore needs to know (one ``zfs get``)."""
    try:
        wanted = (*_PROPERTIES, "keystatus") if _encryption_here() else _PROPERTIES
        result = LocalHost().run(["zfs", "get", "-H", "-p", "-o", "name,property,value", ",".join(wanted),
                                  "-t", "filesystem,volume"], timeout=60)
    except HostError as exc:
        raise RestoreError(f"cannot list the datasets: {exc}") from None
    values: dict[str, dict[str, str]] = {}
    for line in result.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            values.setdefault(parts[0], {})[parts[1]] = parts[2]
    return {name: DatasetInfo(
        name=name, type=v.get("type", ""), mountpoint=v.get("mountpoint", "-"), mounted=v.get("mounted") == "yes",
        readonly=v.get("readonly") == "on", lun_mapping=v.get(properties.LUN_MAPPING, "-"),
        smb_share=v.get(properties.SMB_SHARE, "-"), nfs_export=v.get(properties.NFS_EXPORT, "-"),
        origin=v.get(ORIGIN_PROPERTY, "-"), key_loaded=v.get("keystatus", "-") != "unavailable")
        for name, v in values.items()}


def _encryption_here() -> bool:
    """Whether this node's ZFS knows ``keystatus`` (zfs-fuse's ``zfs get`` refuses it)."""
    try:
        return ZfsNode(LocalHost()).capabilities().encryption
    except (HostError, ZfsError):
        return False


def observe(parts: tuple[str, ...], with_datasets: bool = True) -> Observed:
    """What this node has now, for the backends ``parts`` need."""
    return Observed(
        datasets=datasets() if with_datasets else {},
        unix_users=users.observe() if "users" in parts else {},
        lio=lio.observe() if "luns" in parts else Observed().lio,
        samba=samba.observe() if ("shares" in parts or "users" in parts) else Observed().samba,
        nfs=nfs.observe() if "exports" in parts else Observed().nfs,
    )


def execute(plan: Plan, announce: Callable[[str], None]) -> None:
    """Apply the plan's actions in order, announcing each before doing it.  The first
    failure stops the run (ApplyError, one line)."""
    for action in plan.actions:
        announce(action.description)
        try:
            BACKENDS[action.service](action)
        except ApplyError:
            raise
        except OSError as exc:
            raise ApplyError(f"{action.description}: {exc.strerror or exc}") from None
