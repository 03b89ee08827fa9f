"""What failover asks of the other node, run there over ssh:
``python3 -m ovios_shell_retadm.replication.partner OPERATION …``.

- ``broken DATASET REASON [REPLICA]``: this node's task for DATASET whose replica is REPLICA
  is marked ``broken`` (its replica was promoted, or is being replicated back); its runs refuse
  until switchback.  The dataset's other tasks (fan-out to other destinations) go on.
- ``take-over DATASET SNAPSHOT GUID [REPLICA]``: switchback's end on the original source: DATASET
  becomes writable and unmarked, and its task to REPLICA goes on from SNAPSHOT (guid GUID).

Without REPLICA (a caller from before fan-out) the dataset's only task is meant; with
several, the one whose remote dataset is REPLICA, and among those (one remote name on
several partners) the one whose destination is the host calling (``SSH_CONNECTION``).

Prints one line; exit 0 when done, 1 with the reason on stderr when not.
"""

from __future__ import annotations

import os
import socket
import sys

from ..eventlog import log_event
from ..hosts import HostError, LocalHost
from ..store import StoreError
from ..zfs import ZfsError, ZfsNode
from .failover import FailoverError, take_over
from .task_store import BROKEN, IDLE, TaskRecord, TaskStore


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["broken", dataset, reason, *replica] if len(replica) <= 1:
                record = _task_of(dataset, replica)
                if record is not None:
                    TaskStore().update(record.key, state=BROKEN, error=reason, runner=None)
                    log_event(dataset, "failover", "broken", to=record.target, reason=reason)
                print(f"{dataset}: task to {record.target} marked broken" if record
                      else f"{dataset}: no task here; nothing to mark")
            case ["take-over", dataset, snapshot, guid, *replica] if guid.isdigit() and len(replica) <= 1:
                record = _task_of(dataset, replica)
                take_over(ZfsNode(LocalHost()), dataset)
                if record is not None:
                    TaskStore().update(record.key, state=IDLE, error=None, runner=None,
                                       last_snapshot=snapshot, last_guid=int(guid))
                log_event(dataset, "failover", "take-over", snapshot=snapshot)
                print(f"{dataset}: writable here again" + ("; its task goes on from @" + snapshot if record else ""))
            case _:
                print(f"usage: {__name__} broken DATASET REASON [REPLICA] | "
                      "take-over DATASET SNAPSHOT GUID [REPLICA]", file=sys.stderr)
                return 2
    except (FailoverError, ZfsError, HostError, StoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def _task_of(dataset: str, replica: list[str]) -> TaskRecord | None:
    """The task of ``dataset`` whose replica the caller holds (see the module's text); None
    when the dataset has none; :class:`FailoverError` when it cannot be told which."""
    records = TaskStore().of(dataset)
    if replica:
        records = [r for r in records if r.remote_dataset == replica[0]]
        if len(records) > 1:
            records = [r for r in records if _is_caller(r.destination)]
    if len(records) > 1:
        raise FailoverError(f"{dataset} has {len(records)} replication tasks here "
                            f"({', '.join(r.target for r in records)}); cannot tell which one's replica this is")
    return records[0] if records else None


def _is_caller(host: str) -> bool:
    """Whether ``host`` (a task's destination, a name or an address) is the host this ssh session comes from."""
    caller = (os.environ.get("SSH_CONNECTION") or "").split()[:1]
    if not caller:
        return False
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return caller[0] in addresses


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
