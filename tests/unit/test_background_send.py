"""background_send: how init's full send is started in the background, with the worker's body
(a task's full send, which needs ZFS: the labs run it) replaced by a script of what a worker
does first: take the task's lock, then work until told to stop.

The forked worker is started from a child Python process, as the one-shot ``retadm init``
starts it: a process that exits once the worker has started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ovios_shell_retadm.replication import background_send
from ovios_shell_retadm.replication.task_run import RunFailed
from ovios_shell_retadm.store import TaskKey

KEY = TaskKey("data/x", "dst", "repl/x")

# the caller: starts the worker with background_send's function named in argv[1] (the body
# replaced, see above), says what it got, and exits at once
_CALLER = textwrap.dedent("""\
    import json, os, sys, time
    from pathlib import Path
    from ovios_shell_retadm.replication import background_send
    from ovios_shell_retadm.replication.task_lock import TaskLock
    from ovios_shell_retadm.store import TaskKey

    how, status, seen = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])

    def run_full(key):
        if status:
            return status  # fails at once
        with TaskLock(key):
            fds = {}
            for fd in os.listdir("/proc/self/fd"):
                try:
                    fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
                except FileNotFoundError:
                    pass  # the listing's own
            seen.write_text(json.dumps({"sid": os.getsid(0), "fds": fds}))
            while not seen.with_suffix(".stop").exists():
                time.sleep(0.05)
        return 0

    background_send.run_full = run_full
    print("started", getattr(background_send, how)(TaskKey("data/x", "dst", "repl/x")), flush=True)
""")


def _start(tmp_path: Path, how: str, status: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OVIOS_RUN_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", _CALLER, how, str(status), str(tmp_path / "seen")],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def _stop(tmp_path: Path, pid: int) -> None:
    (tmp_path / "seen.stop").touch()
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the worker did not end"


def test_the_caller_returns_once_its_forked_worker_holds_the_lock_and_the_worker_keeps_none_of_its_files(
        tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OVIOS_RUN_DIR", str(tmp_path))  # where the caller's lock is
    result = _start(tmp_path, "fork")  # returns at the caller's exit: nothing holds its stdout since
    assert result.returncode == 0, result.stderr
    said, pid = result.stdout.split()
    assert said == "started"
    pid = int(pid)
    try:
        seen = json.loads((tmp_path / "seen").read_text())  # written under the lock: before "started"
        assert background_send.TaskLock(KEY).holder() == pid
        assert seen["sid"] == pid  # a session of its own: it outlives its caller's terminal
        lock = str(background_send.TaskLock(KEY).path)
        fds = {int(fd): target for fd, target in seen["fds"].items()}
        assert [fds[fd] for fd in (0, 1, 2)] == ["/dev/null"] * 3
        assert set(fds.values()) == {"/dev/null", lock}, fds
    finally:
        _stop(tmp_path, pid)


def test_a_worker_that_fails_at_once_is_reported(tmp_path) -> None:
    result = _start(tmp_path, "fork", status=3)
    assert result.returncode == 1
    assert "RunFailed: the background replication of data/x failed at once; see the log" in result.stderr


def test_fork_starts_a_new_interpreter_while_another_thread_is_alive(monkeypatch) -> None:
    started: list[TaskKey] = []

    def start(key: TaskKey, wait: float) -> int:
        started.append(key)
        return 4242

    monkeypatch.setattr(background_send, "start", start)
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked with another thread alive"))
    done = threading.Event()
    other = threading.Thread(target=done.wait, args=(30,))
    other.start()
    try:
        assert background_send.fork(KEY) == 4242
    finally:
        done.set()
        other.join()
    assert started == [KEY]


def test_a_worker_that_never_takes_the_lock_is_waited_for_only_so_long(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OVIOS_RUN_DIR", str(tmp_path))
    before = time.monotonic()
    background_send._wait_started(KEY, lambda: None, wait=0.3)  # still running, no lock: given up on
    assert 0.3 <= time.monotonic() - before < 5
    with pytest.raises(RunFailed, match="failed at once"):
        background_send._wait_started(KEY, lambda: 2, wait=5)
