"""Who is running a task, and making sure only one run per task at a time.

A run holds an exclusive ``flock`` on the task's lock file for its whole life: the
kernel drops it when the process dies, however it dies, so a crashed run never
blocks the next one.  Each task has its own lock, so the tasks of one dataset (fan-out)
run side by side.  The run also records who it is — pid, the process start
time and the boot id — so ``status`` can tell a live run from one that died
(a pid alone is not enough: pids are reused, and a reboot resets them).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import settings
from ..fileio import make_private_dir
from ..store import TaskKey


@dataclass(frozen=True)
class Runner:
    pid: int
    start_time: int  # clock ticks since boot (field 22 of /proc/PID/stat)
    boot_id: str

    @classmethod
    def current(cls) -> Runner:
        return cls(os.getpid(), start_ticks(os.getpid()) or 0, boot_id())

    @classmethod
    def from_record(cls, data: dict | None) -> Runner | None:
        if not data:
            return None
        return cls(int(data["pid"]), int(data["start_time"]), str(data["boot_id"]))

    def to_record(self) -> dict:
        return asdict(self)

    def is_alive(self) -> bool:
        return self.boot_id == boot_id() and start_ticks(self.pid) == self.start_time

    def why_dead(self) -> str:
        if self.boot_id != boot_id():
            return f"the run (pid {self.pid}) was interrupted by a reboot"
        return f"the run (pid {self.pid}) died before it finished"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``); None
    when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its last ')'
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def process_age(pid: int) -> float | None:
    """Seconds since process ``pid`` started; None when it does not exist."""
    ticks = start_ticks(pid)
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return None
    return None if ticks is None else uptime - ticks / os.sysconf("SC_CLK_TCK")


def lock_holder(path: Path, proc_locks: str | None = None) -> int | None:
    """The pid holding the ``flock`` on ``path``, read from ``/proc/locks`` (no lock is taken)."""
    try:
        st = os.stat(path)
        text = Path("/proc/locks").read_text() if proc_locks is None else proc_locks
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue  # other lock kinds, and "->" lines (waiters)
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == want:
                return int(fields[4])
        except ValueError:
            continue
    return None


class TaskBusy(Exception):
    """Another run of the same task holds the lock."""


class TaskLock:
    """An exclusive, non-blocking, crash-safe lock for one task (a dataset's other tasks have
    their own: they may run at the same time)."""

    def __init__(self, key: TaskKey):
        self.path = settings.run_dir() / "locks" / (key.file_name + ".lock")
        self._fd: int | None = None

    def holder(self) -> int | None:
        """The pid that holds this lock now, if any (see :func:`lock_holder`)."""
        return lock_holder(self.path)

    def acquire(self) -> None:
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TaskBusy(self.path) from None
        self._fd = fd

    def is_held(self) -> bool:
        """Whether some process holds the lock now (without taking it)."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's lock, if it got one

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TaskLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
