"""The detached process that carries out a task's full send (``retadm init``'s background).

``python -m ovios_shell_retadm.replication.background_send full DATASET DESTINATION REMOTE_DATASET``
(not a shell verb):
the shell starts it in its own session so it survives the shell's exit; it reports
only through the task record and ``repl.log``.
"""

from __future__ import annotations

import sys

from ..eventlog import log_event
from ..store import TaskKey
from .task_run import FULL, RunFailed, TaskRun
from .task_store import TaskStore


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] != FULL:
        print("usage: python -m ovios_shell_retadm.replication.background_send full DATASET DESTINATION REMOTE_DATASET",
              file=sys.stderr)
        return 2
    key = TaskKey(*argv[1:])
    record = TaskStore().get(key)
    if record is None:
        log_event(key.dataset, FULL, "error", message=f"no replication task to {key.destination}:{key.remote_dataset}")
        return 1
    try:
        TaskRun(record, FULL).run()
    except RunFailed as exc:
        return exc.status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
