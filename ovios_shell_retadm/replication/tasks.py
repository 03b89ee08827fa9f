"""Replication task records: what is replicated where, and how its last run went.

A record lives in the store (one JSON object per source dataset).  Its ``state`` is
one of the guide's status words; ``running_*`` is only believed while the recorded
runner is alive (see :func:`effective_status`).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import asdict, dataclass, field, fields

from ..store import Store
from .model import Task
from .origin import OriginError, format_origin
from .runs import Runner

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

    @classmethod
    def from_dict(cls, data: dict) -> TaskRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    def task(self) -> Task:
        origin = None
        if self.source_address:
            with contextlib.suppress(OriginError):  # (an address not fit for a mark: none is written)
                origin = format_origin(self.source_address, self.dataset)
        return Task.identified(self.dataset, self.destination, self.remote_dataset, self.properties, self.identity,
                               origin=origin, cascade=self.cascade, raw=self.send_mode == RAW)


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


class TaskStore:
    """Task records in the node's store."""

    def __init__(self, store: Store | None = None):
        self.store = store or Store()

    def get(self, dataset: str) -> TaskRecord | None:
        data = self.store.get_task(dataset)
        return TaskRecord.from_dict(data) if data else None

    def all(self) -> list[TaskRecord]:
        return [TaskRecord.from_dict(d) for d in self.store.all_tasks().values()]

    def create(self, record: TaskRecord) -> bool:
        return self.store.create_task(record.dataset, record.to_dict())

    def update(self, dataset: str, **changes) -> TaskRecord | None:
        data = self.store.update_task(dataset, lambda d: {**d, **changes})
        return TaskRecord.from_dict(data) if data else None

    def delete(self, dataset: str) -> bool:
        return self.store.delete_task(dataset)
