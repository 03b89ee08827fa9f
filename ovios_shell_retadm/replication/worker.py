"""The detached process that carries out a task's full send (``retadm init``'s background).

``python -m ovios_shell_retadm.replication.worker full DATASET`` — not a shell verb:
the shell starts it in its own session so it survives the shell's exit; it reports
only through the task record and ``repl.log``.
"""

from __future__ import annotations

import sys

from ..eventlog import log_event
from .jobs import FULL, RunFailed, TaskRun
from .tasks import TaskStore


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != FULL:
        print("usage: python -m ovios_shell_retadm.replication.worker full DATASET", file=sys.stderr)
        return 2
    dataset = argv[1]
    record = TaskStore().get(dataset)
    if record is None:
        log_event(dataset, FULL, "error", message="no replication task")
        return 1
    try:
        TaskRun(record, FULL).run()
    except RunFailed as exc:
        return exc.status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
