"""What failover asks of the other node, run there over ssh:
``python3 -m ovios_shell_retadm.replication.partner OPERATION …``.

- ``broken DATASET REASON``: this node's task for DATASET is marked ``broken`` (its
  replica was promoted, or is being replicated back); its runs refuse until switchback.
- ``take-over DATASET SNAPSHOT GUID``: switchback's end on the original source: DATASET
  becomes writable and unmarked, and its task goes on from SNAPSHOT (guid GUID).

Prints one line; exit 0 when done, 1 with the reason on stderr when not.
"""

from __future__ import annotations

import sys

from ..eventlog import log_event
from ..hosts import HostError, LocalHost
from ..store import StoreError
from ..zfs import ZfsError, ZfsNode
from .failover import FailoverError, take_over
from .tasks import BROKEN, IDLE, TaskStore


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["broken", dataset, reason]:
                record = TaskStore().update(dataset, state=BROKEN, error=reason, runner=None)
                log_event(dataset, "failover", "broken", reason=reason)
                print(f"{dataset}: task marked broken" if record else f"{dataset}: no task here; nothing to mark")
            case ["take-over", dataset, snapshot, guid] if guid.isdigit():
                take_over(ZfsNode(LocalHost()), dataset)
                record = TaskStore().update(dataset, state=IDLE, error=None, runner=None,
                                            last_snapshot=snapshot, last_guid=int(guid))
                log_event(dataset, "failover", "take-over", snapshot=snapshot)
                print(f"{dataset}: writable here again" + ("; its task goes on from @" + snapshot if record else ""))
            case _:
                print(f"usage: {__name__} broken DATASET REASON | take-over DATASET SNAPSHOT GUID", file=sys.stderr)
                return 2
    except (FailoverError, ZfsError, HostError, StoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
