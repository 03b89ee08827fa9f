"""What the doctor's checks look at, gathered once per task: every ssh, zfs, cron and lock read.

A fact is its value, or :class:`Missing`: why it could not be gathered.  Gathering goes on
past a fact it could not get; a fact that needs a missing one is missing too, for the same
reason (no replica to look at when the destination cannot be reached).  The checks
(:mod:`.checks`) only read these facts.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar, Union

from ... import captured, cron, options, services
from ...hosts import LocalHost, Result, SshHost
from ...zfs import Encryption, ZfsNode, pool_of
from .. import preflight
from ..executor import Pair
from ..leftovers import listing_argv
from ..model import Observed
from ..task_lock import TaskLock, process_age
from ..task_store import RUNNING_FULL, RUNNING_INC, Status, TaskRecord, TaskStore, effective_status

_SSH_TIMEOUT = 30
_ZFS_TIMEOUT = 60

T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True)
class Missing:
    """A fact that could not be gathered.

    ``reason`` is what a check that needs the fact says when it is skipped.  ``error`` is
    what stopped the gathering of this very fact (None when a fact it needs was missing);
    the check the fact belongs to reports it, the checks that only need the fact skip.
    """

    reason: str
    error: Exception | None = None


#: a gathered value, or why there is none
Fact = Union[T, Missing]  # noqa: UP007 - a generic alias: `T | Missing` is no type before 3.12


def attempt(read: Callable[[], T], reason: str) -> Fact[T]:
    """``read()``, or what stopped it (``reason``: what the checks that need it say)."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - the check the fact belongs to reports it
        return Missing(reason, exc)


def given(premise: Fact[V], read: Callable[[V], T], reason: str) -> Fact[T]:
    """``read(premise)`` once the premise is there; missing for the premise's reason otherwise."""
    if isinstance(premise, Missing):
        return Missing(premise.reason)
    return attempt(lambda: read(premise), reason)


class Mountpoint(NamedTuple):
    """The replica's type, and its ``mountpoint`` with the value's source (``zfs get``)."""

    kind: str
    value: str
    source: str


@dataclass(frozen=True)
class Environment:
    """What the checks of every task share, read once: this node's name, root's crontab,
    the cron option and daemon."""

    hostname: str
    crontab: Fact[list[cron.Entry]]
    cron_enabled: Fact[bool]
    cron_running: Fact[bool]
    #: sshd's PermitRootLogin here (``sshd -T``; None: sshd cannot tell)
    root_login: Fact[str | None]
    #: whether autosync is on, and what its capture of the services could not carry
    autosync: Fact[bool] = False
    not_captured: Fact[list[str]] = field(default_factory=list)

    @classmethod
    def read(cls) -> Environment:
        return cls(
            hostname=socket.gethostname().split(".")[0] or "this node",
            crontab=attempt(lambda: cron.parse(cron.Crontab().read())[0], "root's crontab cannot be read"),
            cron_enabled=attempt(lambda: options.is_on("cron.enable"), "cron.enable cannot be read"),
            cron_running=attempt(lambda: services.service_manager().is_running(services.CRON),
                                 "whether the cron daemon runs is not known"),
            root_login=attempt(services.root_login_policy, "sshd's root login policy cannot be read"),
            autosync=attempt(lambda: options.is_on("autosync.enable"), "autosync.enable cannot be read"),
            not_captured=attempt(captured.notes, "the capture's notes cannot be read"),
        )


@dataclass(frozen=True)
class TaskFacts:
    """One task's facts, in the order of the checks that look at them."""

    record: TaskRecord
    environment: Environment
    status: Status
    #: the dataset's type here (None: it does not exist)
    source_kind: Fact[str | None]
    #: the datasets under it that no task replicates
    unreplicated_children: Fact[list[str]]
    #: the destination's name, once passwordless ssh reached it
    ssh: Fact[str]
    #: this node's address as the destination sees it, once ssh back from there worked
    reverse_address: Fact[str]
    #: sshd's PermitRootLogin on the destination (``sshd -T`` there)
    destination_root_login: Fact[str | None]
    #: the destination's pools and their health
    pools: Fact[dict[str, str]]
    #: the replica's pool's ``available`` and ``used`` bytes
    pool_space: Fact[tuple[int, int]]
    #: both sides as the planner sees them; None while the full replication has not completed
    observed: Fact[Observed | None]
    source_encryption: Fact[Encryption | None]
    replica_encryption: Fact[Encryption | None]
    replica_mountpoint: Fact[Mountpoint]
    #: the pid that holds the task's lock (None: none does)
    lock_holder: Fact[int | None]
    #: the destination's processes, as :func:`..leftovers.listing_argv` lists them
    destination_processes: Fact[Result]
    #: how long the task's live run has been running (None: no live run)
    run_age: Fact[float | None]
    #: when the facts were gathered
    now: float

    @property
    def replica(self) -> Fact[Observed]:
        """Both sides, where the replica exists: what the checks after ``replica`` look at."""
        return existing_replica(self.record, self.observed)


def existing_replica(record: TaskRecord, observed: Fact[Observed | None]) -> Fact[Observed]:
    """``observed`` where it shows a replica; missing, with the reason, where it does not."""
    if isinstance(observed, Missing):
        return Missing(observed.reason)
    if observed is None:
        return Missing("the full replication has not completed")
    if observed.destination is None:
        return Missing(f"{record.remote_dataset} does not exist")
    return observed


def gather(record: TaskRecord, environment: Environment, *, source: ZfsNode | None = None,
           destination_host: SshHost | None = None, now: Callable[[], float] = time.time) -> TaskFacts:
    """Everything the checks of ``record`` look at, read in the order of the checks.

    ``source`` (this node's ZFS) and ``destination_host`` stand in for the real ones in
    tests; ``now`` is read last, when everything else is known.
    """
    status = effective_status(record)
    dest, remote, pool = record.destination, record.remote_dataset, pool_of(record.remote_dataset)
    here = source or ZfsNode(LocalHost(), timeout=_ZFS_TIMEOUT)
    source_kind = attempt(lambda: here.dataset_type(record.dataset), "local ZFS does not answer")

    def reach() -> SshHost:
        host = destination_host or SshHost(dest)
        host.run(["true"], timeout=_SSH_TIMEOUT)
        return host

    connection = attempt(reach, f"{dest} cannot be reached over ssh")
    pools = given(connection, _pools, f"zfs does not answer on {dest}")
    pool_node = _pool_node(connection, pools, pool, dest)
    observed = _observe(record, here, source_kind, pool_node)
    replica = existing_replica(record, observed)
    running = status.word in (RUNNING_FULL, RUNNING_INC)
    return TaskFacts(
        record=record,
        environment=environment,
        status=status,
        source_kind=source_kind,
        unreplicated_children=given(source_kind, lambda kind: _unreplicated_children(here, record.dataset, kind),
                                    "the datasets under it cannot be listed"),
        ssh=connection if isinstance(connection, Missing) else connection.name,
        reverse_address=given(connection, preflight.reverse_ssh, f"ssh from {dest} back here does not work"),
        destination_root_login=given(connection, _root_login, f"sshd's root login policy on {dest} cannot be read"),
        pools=pools,
        pool_space=given(pool_node, lambda node: _space(node, pool), f"the free space of {pool} cannot be read"),
        observed=observed,
        source_encryption=_of_replica(replica, here, lambda node: node.encryption(record.dataset),
                                      "the source's encryption cannot be read"),
        replica_encryption=_of_replica(replica, pool_node, lambda node: node.encryption(remote),
                                       "the replica's encryption cannot be read"),
        replica_mountpoint=_of_replica(replica, pool_node, lambda node: _mountpoint(node, remote),
                                       "the replica's mountpoint cannot be read"),
        lock_holder=attempt(TaskLock(record.key).holder, "the task's lock cannot be read"),
        destination_processes=given(connection, _processes, f"the processes on {dest} cannot be listed"),
        run_age=attempt(lambda: process_age(int((record.runner or {}).get("pid", 0))),
                        "how long the run has been running is not known") if running else None,
        now=now(),
    )


def _unreplicated_children(here: ZfsNode, dataset: str, kind: str | None) -> list[str]:
    if kind is None:
        return []  # (the dataset is gone: the first check says so)
    return preflight.unreplicated_children(here.descendants(dataset), TaskStore())


def _root_login(host: SshHost) -> str | None:
    return services.permit_root_login_of(host.run(["sshd", "-T"], timeout=_SSH_TIMEOUT).stdout)


def _pools(host: SshHost) -> dict[str, str]:
    out = host.run(["zpool", "list", "-H", "-o", "name,health"], timeout=_ZFS_TIMEOUT).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def _pool_node(connection: Fact[SshHost], pools: Fact[dict[str, str]], pool: str, dest: str) -> Fact[ZfsNode]:
    """The destination's ZFS, once the replica's pool is known to be there."""
    if isinstance(connection, Missing):
        return Missing(connection.reason)
    if isinstance(pools, Missing):
        return Missing(pools.reason)
    if pool not in pools:
        return Missing(f"pool {pool} is not on {dest}")
    return ZfsNode(connection, timeout=_ZFS_TIMEOUT)


def _space(node: ZfsNode, pool: str) -> tuple[int, int]:
    values = node.get_properties(pool, ["available", "used"])
    return int(values["available"]), int(values["used"])


def _observe(record: TaskRecord, here: ZfsNode, source_kind: Fact[str | None],
             pool_node: Fact[ZfsNode]) -> Fact[Observed | None]:
    """Both sides, once the source and the replica's pool are there; None while the full
    replication has not completed (there is no chain to look at yet)."""
    if source_kind is None:
        return Missing(f"{record.dataset} does not exist here")
    if isinstance(source_kind, Missing):
        return Missing(source_kind.reason)
    if isinstance(pool_node, Missing):
        return Missing(pool_node.reason)
    if not record.initialised:
        return None
    return attempt(lambda: Pair(record.task(), here, pool_node).observe(record.last_guid),
                   "the snapshots could not be read")


def _of_replica(replica: Fact[Observed], node: Fact[ZfsNode], read: Callable[[ZfsNode], T],
                reason: str) -> Fact[T]:
    """``read(node)`` where the replica exists."""
    return Missing(replica.reason) if isinstance(replica, Missing) else given(node, read, reason)


def _mountpoint(node: ZfsNode, dataset: str) -> Mountpoint:
    props = node.values_and_sources(dataset, ["type", "mountpoint"])
    return Mountpoint(props["type"][0], *props["mountpoint"])


def _processes(host: SshHost) -> Result:
    return host.run(listing_argv(), timeout=_SSH_TIMEOUT, check=False)
