"""Thin wrappers over the Linux facilities the lab needs: mount syscalls and /proc.

Standard library only (the namespace holder imports this before it has a root
filesystem of its own).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(value: str | os.PathLike | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | os.PathLike | None, target: str | os.PathLike, fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {source} on {target}")


def bind_mount(source: str | os.PathLike, target: str | os.PathLike, recursive: bool = False) -> None:
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))


def umount(target: str | os.PathLike, detach: bool = True) -> None:
    _check(_libc.umount2(_b(target), MNT_DETACH if detach else 0), f"umount {target}")


def pivot_root(new_root: str | os.PathLike, put_old: str | os.PathLike) -> None:
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(number), _b(new_root), _b(put_old)), "pivot_root")


def mount_points() -> list[str]:
    """Mount points of the calling process's mount namespace."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            raw = line.split(" ")[4]
            points.append(raw.encode().decode("unicode_escape") if "\\" in raw else raw)
    return points


# -- processes ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessId:
    """A process, robust against pid reuse: the pid plus its start time."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        start = start_time(pid)
        return None if start is None else cls(pid, start)

    def alive(self) -> bool:
        return start_time(self.pid) == self.start and not is_zombie(self.pid)

    def to_json(self) -> list[int]:
        return [self.pid, self.start]

    @classmethod
    def from_json(cls, value: list[int]) -> ProcessId:
        return cls(int(value[0]), int(value[1]))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode(errors="replace")
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces
    return data[data.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def namespace_id(pid: int | str, kind: str) -> tuple[int, int] | None:
    """(device, inode) of a process's namespace of the given kind ('net', 'mnt', 'uts')."""
    try:
        st = os.stat(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def pids_in_namespace(kind: str, ns: tuple[int, int]) -> list[int]:
    """Live processes whose namespace of ``kind`` is ``ns``."""
    return [pid for pid in all_pids() if namespace_id(pid, kind) == ns]


def environ_has(pid: int, entry: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return entry.encode() in data.split(b"\0")


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_and_wait(pids: list[int], timeout: float = 10.0, reap_timeout: float = 0.0) -> list[int]:
    """SIGKILL the processes and wait until they are dead.

    Returns the pids still alive after ``timeout``.  A dead process stays a zombie
    until its parent reaps it; orphans belong to pid 1, which (here) reaps them
    about once a second.  With ``reap_timeout`` we also wait (at most that long,
    without failing) for the zombies to disappear, so a process list taken
    afterwards no longer shows them.
    """
    me = os.getpid()
    targets = {p: start_time(p) for p in pids if p != me}
    for pid in targets:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def present(pid: int) -> bool:
        return start_time(pid) == targets[pid]

    def alive() -> list[int]:
        return [p for p in targets if present(p) and not is_zombie(p)]

    wait_for(lambda: not alive(), timeout)
    remaining = alive()
    if not remaining and reap_timeout:
        wait_for(lambda: not any(present(p) for p in targets), reap_timeout, interval=0.05)
    return remaining


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def make_private_directory(directory: Path) -> None:
    """``directory`` (and its parents) made, mode 0700.  Another lab's ``down`` may remove
    the shared base directory meanwhile: a few tries."""
    from .spec import LabError

    for _ in range(10):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            return
        except FileNotFoundError:
            continue
    raise LabError(f"cannot create {directory}")


@contextmanager
def locked_directory(directory: Path, create: bool) -> Iterator[bool]:
    """Serialise up/down of a lab: an flock on its directory itself.

    Yields True once locked; False (without locking) when the directory does not exist
    and ``create`` is false.  A directory removed and made again while we waited for the
    lock is not the one we locked: try again (or, not creating, it is gone: False).
    """
    while True:
        if create:
            make_private_directory(directory)
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            if create:
                continue
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(directory).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield True
                return
            if not create:
                yield False
                return
        finally:
            os.close(fd)
