"""Replication task records: what is replicated where, and how its last run went.

A record lives in the store (one JSON object per task).  A dataset may have several tasks,
one per destination (fan-out): a task is told from the others by its :class:`TaskKey`, and the
commands that act on one task choose it with ``--dest`` (:func:`choose`).  Its ``state`` is
one of the guide's status words; ``running_*`` is only believed while the recorded
runner is alive (see :func:`effective_status`).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import asdict, dataclass, field, fields

from ..store import Store, TaskKey
from .model import Task
from .origin import OriginError, format_origin
from .retention import Retention
from .task_lock import Runner

IDLE = "idle"
RUNNING_FULL = "running_full"
RUNNING_INC = "running_inc"
ERROR = "error"
#: the replica was promoted on the partner (failover): no run goes on until failback
BROKEN = "broken"
STATES = (IDLE, RUNNING_FULL, RUNNING_INC, ERROR, BROKEN)

#: How a task sends its dataset (``TaskRecord.send_mode``), decided at ``init``:
#: the source is not encrypted: a plain send, as ever
PLAIN = "plain"
#: the source is encrypted and travels raw (``send -w``): the replica stays encrypted, the key stays here
RAW = "raw"
#: the source is encrypted but the administrator asked for a decrypted replica (``--decrypted``)
DECRYPTED = "decrypted"
SEND_MODES = (PLAIN, RAW, DECRYPTED)


@dataclass
class TaskRecord:
    dataset: str
    destination: str
    remote_dataset: str
    properties: bool
    state: str = RUNNING_FULL
    created: float = field(default_factory=time.time)
    #: the full send has completed once: incrementals are possible
    initialised: bool = False
    runner: dict | None = None
    error: str | None = None
    last_success: float | None = None
    #: the last common snapshot (short name) and its guid
    last_snapshot: str | None = None
    last_guid: int | None = None
    last_bytes: int | None = None
    last_seconds: float | None = None
    #: this node's address as the destination reaches it (for failover and failback)
    source_address: str | None = None
    #: the task's own name in its tracking snapshots and hold tag (see model.py); None for a
    #: task set up before identities existed (it goes on as it was, without a full send)
    identity: str | None = None
    #: the dataset is itself a replica: the task sends on what arrives and takes no snapshot
    cascade: bool = False
    #: one of SEND_MODES; None for a task set up before send modes existed: it goes on as it
    #: was (never raw: an incremental raw stream onto its non-raw replica would fail), and
    #: its first run records what that is (PLAIN, or DECRYPTED for an encrypted source)
    send_mode: str | None = None
    #: the stream flags its sends carry (``-L``, ``-c``, ``-e``: zfs.STREAM_FLAGS), decided at
    #: ``init`` where both sides support them and never changed (``-L`` toggled within one chain
    #: is refused or corrupts the replica); None for a task set up before flags existed: it
    #: goes on as it was (no flags), and its first run records that as an empty list
    send_flags: list[str] | None = None
    #: bytes a second its streams may not exceed (``--bandwidth``; a WAN link's share); None: no limit
    bandwidth: int | None = None
    #: the restore points its replica keeps (a retention.Retention's text, ``--retention``); None for a
    #: task set up before policies, or a cascade (it relays its source's): only the common snapshot
    retention: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> TaskRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def key(self) -> TaskKey:
        return TaskKey(self.dataset, self.destination, self.remote_dataset)

    @property
    def target(self) -> str:
        """Where the task replicates to, as ``host:remote/dataset``: what tells a dataset's tasks apart."""
        return target_text(self.destination, self.remote_dataset)

    def task(self) -> Task:
        origin = None
        if self.source_address:
            with contextlib.suppress(OriginError):  # (an address not fit for a mark: none is written)
                origin = format_origin(self.source_address, self.dataset)
        return Task.identified(self.dataset, self.destination, self.remote_dataset, self.properties, self.identity,
                               origin=origin, cascade=self.cascade, raw=self.send_mode == RAW,
                               send_flags=tuple(self.send_flags or ()), retention=self.restore_points)

    @property
    def restore_points(self) -> Retention:
        """Its retention policy (none recorded: only the common snapshot is kept)."""
        return Retention.parse(self.retention) if self.retention else Retention()


def target_text(destination: str, remote_dataset: str) -> str:
    try:
        return format_origin(destination, remote_dataset)
    except OriginError:
        return f"{destination}:{remote_dataset}"


def new_identity() -> str:
    """A new task's identity (see model.IDENTITY)."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class Status:
    word: str  # one of STATES
    reason: str | None


def effective_status(record: TaskRecord) -> Status:
    """The status to show: a run that died is an error, not running forever."""
    if record.state in (RUNNING_FULL, RUNNING_INC):
        runner = Runner.from_record(record.runner)
        if runner is None or not runner.is_alive():
            return Status(ERROR, runner.why_dead() if runner else "the run never started")
        return Status(record.state, None)
    return Status(record.state, record.error if record.state in (ERROR, BROKEN) else None)


class TaskChoiceError(Exception):
    """The dataset has no task, or several and ``--dest`` does not name one of them; one line."""


class TaskStore:
    """Task records in the node's store."""

    def __init__(self, store: Store | None = None):
        self.store = store or Store()

    def get(self, key: TaskKey) -> TaskRecord | None:
        data = self.store.get_task(key)
        return TaskRecord.from_dict(data) if data else None

    def of(self, dataset: str) -> list[TaskRecord]:
        """Every task of ``dataset`` (one per destination)."""
        return [TaskRecord.from_dict(d) for d in self.store.tasks_of(dataset)]

    def all(self) -> list[TaskRecord]:
        return [TaskRecord.from_dict(d) for d in self.store.all_tasks()]

    def create(self, record: TaskRecord) -> bool:
        return self.store.create_task(record.key, record.to_dict())

    def update(self, key: TaskKey, **changes) -> TaskRecord | None:
        data = self.store.update_task(key, lambda d: {**d, **changes})
        return TaskRecord.from_dict(data) if data else None

    def move(self, record: TaskRecord, **changes) -> TaskRecord | None:
        """The task under its new key (a new destination address): stored anew, then the old
        record dropped.  None when a task is already stored under the new key."""
        moved = TaskRecord.from_dict({**record.to_dict(), **changes})
        if not self.create(moved):
            return None
        self.delete(record.key)
        return moved

    def delete(self, key: TaskKey) -> bool:
        return self.store.delete_task(key)

    def choose(self, dataset: str, dest: str | None) -> TaskRecord:
        """The one task of ``dataset`` that ``dest`` names (see :func:`choose`)."""
        return choose(dataset, self.of(dataset), dest)


def choose(dataset: str, records: list[TaskRecord], dest: str | None) -> TaskRecord:
    """The task of ``dataset`` that ``dest`` names — its destination host, its remote dataset,
    or both as ``host:remote/dataset`` — or its only task when ``dest`` is None."""
    if not records:
        raise TaskChoiceError(f"{dataset} has no replication task")
    if dest is None:
        if len(records) == 1:
            return records[0]
        raise TaskChoiceError(f"{dataset} has {len(records)} replication tasks ({_targets(records)}); "
                              "choose one with --dest HOST or --dest HOST:REMOTE_DATASET")
    chosen = [r for r in records if dest in (r.destination, r.remote_dataset, r.target)]
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise TaskChoiceError(f"{dataset} has no replication task to {dest} (its tasks: {_targets(records)})")
    raise TaskChoiceError(f"{dataset} has {len(chosen)} replication tasks to {dest} ({_targets(chosen)}); "
                          "choose one with --dest HOST:REMOTE_DATASET")


def _targets(records: list[TaskRecord]) -> str:
    return ", ".join(r.target for r in records)
