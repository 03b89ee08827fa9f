"""The detached process that carries out a task's full send (``retadm init``'s background).

The worker lives in a session of its own so that it outlives the shell; it reports only
through the task record and ``repl.log``.  It is started one of two ways:

- :func:`start`: a new interpreter, ``python -m ovios_shell_retadm.replication.background_send
  full DATASET DESTINATION REMOTE_DATASET`` (not a shell verb).  The interactive shell starts it
  so: the shell lives on, keeps its own state (its terminal, its threads), and must not be left
  with a child to reap.
- :func:`fork`: this process, forked.  The one-shot ``ovios-shell retadm init`` (a script, an
  automation) exits once the worker has started, so nothing is left to reap, and the worker
  starts with everything already imported: a new interpreter costs more than the rest of the
  checks on a slow node.  Forking is safe only from a process whose one thread is the caller,
  with no database connection open and no lock held (the task store opens one connection per
  operation, and init holds no lock while it starts the worker); where another thread is still
  alive, :func:`fork` starts a new interpreter instead.

Either way, the caller returns once the worker holds the task's lock, so that "started" is
true when it says so.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from ..eventlog import log_event
from ..store import TaskKey
from .task_lock import TaskLock
from .task_run import FULL, RunFailed, TaskRun
from .task_store import TaskStore

#: run with ``python -m`` (what a worker started by :func:`start` shows in ``ps``)
MODULE = "ovios_shell_retadm.replication.background_send"
#: how long the caller waits for the worker to take the task's lock
STARTED_WITHIN = 10.0


def run_full(key: TaskKey) -> int:
    """The worker's work: the task's full send, to its end; the exit status."""
    record = TaskStore().get(key)
    if record is None:
        log_event(key.dataset, FULL, "error", message=f"no replication task to {key.destination}:{key.remote_dataset}")
        return 1
    try:
        TaskRun(record, FULL).run()
    except RunFailed as exc:
        return exc.status
    return 0


def start(key: TaskKey, wait: float = STARTED_WITHIN) -> int:
    """Start the worker for ``key`` as a new interpreter; return its pid once it has started."""
    argv = [sys.executable, "-m", MODULE, FULL, *key]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    _wait_started(key, proc.poll, wait)
    return proc.pid


def fork(key: TaskKey, wait: float = STARTED_WITHIN) -> int:
    """Start the worker for ``key`` as this process forked (see the module's note); return its
    pid once it has started.  For a process that exits soon after: the worker is its child."""
    if not _alone(within=1.0):
        return start(key, wait)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # what is buffered is the caller's to print, once
    gc.collect()  # no garbage left to close a descriptor in the worker that is no longer its own
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.setsid()
            _detach_from_the_callers_files()
            status = run_full(key)
        finally:
            os._exit(status)  # never back into the caller's code: its exit is its own

    def exited() -> int | None:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(wait_status) if done else None

    _wait_started(key, exited, wait)
    return pid


def _alone(within: float) -> bool:
    """Whether the calling thread is this process's only one, once the threads of commands that
    have ended have had ``within`` seconds to finish."""
    deadline = time.monotonic() + within
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    return threading.active_count() == 1


def _detach_from_the_callers_files() -> None:
    """stdin, stdout and stderr on /dev/null, and no other descriptor the caller had: its
    reader sees the end of its output when the caller exits, not when the send ends."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))


def _wait_started(key: TaskKey, exited: Callable[[], int | None], wait: float) -> None:
    """Return once the worker holds the task's lock (or ``wait`` seconds have passed
    with it still running); :class:`RunFailed` if it ended at once with a failure."""
    lock = TaskLock(key)
    deadline = time.monotonic() + wait
    status = exited()
    while status is None and time.monotonic() < deadline and not lock.is_held():
        time.sleep(0.05)
        status = exited()
    if status not in (None, 0):
        raise RunFailed(f"the background replication of {key.dataset} failed at once; see the log")


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] != FULL:
        print(f"usage: python -m {MODULE} full DATASET DESTINATION REMOTE_DATASET", file=sys.stderr)
        return 2
    return run_full(TaskKey(*argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
