"""A running transfer's progress, readable by other processes (``retadm watch``).

The stream itself never passes through Python (see :mod:`.pipeline`): ``pv`` counts
it, and the run that owns the pipeline copies the latest count into a small JSON file,
``settings.run_dir()/progress/<dataset>@<host>:<remote dataset>.json`` (``/`` as ``%``;
one per task: a dataset replicated to several destinations has one per destination).  Each
write is a temporary
file renamed over the old one, so a reader sees a whole file or the previous one,
never half of one.  The run removes the file when it ends; a file left by a run that
died is recognised by its writer's identity (pid, start time, boot id), like the
task record's runner.

The file says, for the run as a whole:

- ``bytes``: sent so far, every send of the run included (a full run with existing
  user snapshots is two sends: the oldest snapshot in full, then ``-I``);
- ``estimate``: the bytes the run will have sent when the *current* send ends (what
  the sends before it sent plus ``zfs send -nvP``'s estimate of this one), or None
  where ZFS cannot estimate (zfs-fuse);
- ``send``/``sends``: which send of the plan is running.

The pure helpers at the bottom turn samples into a rate, a time left and one line.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .. import settings
from ..fileio import make_private_dir, write_atomically
from .task_lock import Runner

#: at most one write per this many seconds (pv itself reports once a second)
WRITE_INTERVAL = 0.5
#: a count not renewed for this long means the stream stands still
STALLED_AFTER = 2.5


def progress_path(name: str) -> Path:
    """The progress file of the task named ``name`` (its ``TaskKey.file_name``: one per task)."""
    return settings.run_dir() / "progress" / (name.replace("/", "%") + ".json")


@dataclass(frozen=True)
class Progress:
    dataset: str
    kind: str  # "full", "inc", "repair"
    runner: dict  # Runner.to_record() of the run writing the file
    started: float  # epoch seconds: the run's first send began
    updated: float  # epoch seconds: this count was taken
    bytes: int
    estimate: int | None = None
    send: int = 1
    sends: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Progress:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def writer_alive(self) -> bool:
        runner = Runner.from_record(self.runner)
        return runner is not None and runner.is_alive()


def write_progress(progress: Progress, name: str) -> None:
    """Atomically replace the task's progress file."""
    path = progress_path(name)
    make_private_dir(path.parent)
    write_atomically(path, progress.to_json())


def read_progress(name: str) -> Progress | None:
    """The task's progress file, or None when there is none (or it cannot be read)."""
    try:
        return Progress.from_json(progress_path(name).read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None


def remove_progress(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        progress_path(name).unlink()


class ProgressFile:
    """The writer a run hands to :class:`~.executor.Pair`: one file for the whole run.

    ``plan_sends`` before each plan, ``start_send`` before each send (with ZFS's estimate of it, or None), the instance
    itself as ``transfer``'s ``on_progress`` callback (pv's running count of that send),
    ``end_send`` after it, ``close`` when the run ends.  Failing to write the file never
    stops a replication: progress is a courtesy.
    """

    def __init__(self, dataset: str, kind: str, sends: int = 1, clock=time.time, name: str | None = None):
        self.dataset = dataset
        #: the file's name: the task's ``TaskKey.file_name`` (the dataset's other tasks have their own)
        self.name = name or dataset
        self.kind = kind
        self.sends = sends
        self._clock = clock
        self._runner = Runner.current().to_record()
        self._done = 0  # bytes of the sends already finished
        self._send = 0
        self._estimate: int | None = None
        self._started: float | None = None
        self._last: Progress | None = None
        self._last_write = 0.0

    def plan_sends(self, count: int) -> None:
        """A plan with ``count`` sends is about to be carried out (a run may have several plans)."""
        self.sends = self._send + count

    def start_send(self, estimate: int | None) -> None:
        self._send += 1
        self._estimate = None if estimate is None else self._done + estimate
        if self._started is None:
            self._started = self._clock()
        self._write(self._done, force=True)

    def __call__(self, sent: int) -> None:
        self._write(self._done + sent)

    def end_send(self, sent: int | None) -> None:
        if sent is not None:
            self._done += sent
            self._write(self._done, force=True)

    def close(self) -> None:
        remove_progress(self.name)

    def _write(self, total: int, force: bool = False) -> None:
        now = self._clock()
        if self._last is not None and total == self._last.bytes and not force:
            return
        if not force and now - self._last_write < WRITE_INTERVAL:
            return
        progress = Progress(self.dataset, self.kind, self._runner, self._started or now, now, total,
                            self._estimate, max(self._send, 1), max(self.sends, self._send, 1))
        try:
            write_progress(progress, self.name)
        except OSError:
            return
        self._last, self._last_write = progress, now


# -- reading it: rate, time left, one line ---------------------------------------------------


class RateMeter:
    """Bytes per second over the last ``window`` seconds of samples (a moving average).

    With a single sample, the average since the transfer started.
    """

    def __init__(self, window: float = 10.0):
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, progress: Progress) -> None:
        if self._samples and self._samples[-1] == (progress.updated, progress.bytes):
            return
        if self._samples and progress.bytes < self._samples[-1][1]:
            self._samples.clear()  # another run's file: start again
        self._samples.append((progress.updated, progress.bytes))
        while len(self._samples) > 2 and progress.updated - self._samples[0][0] > self.window:
            self._samples.popleft()

    def rate(self, progress: Progress, now: float | None = None) -> float | None:
        """``now``: when the count was read; a count older than :data:`STALLED_AFTER` means
        nothing moved since (pv reports every second), so the rate falls."""
        if self._samples and now is not None and now - self._samples[-1][0] > STALLED_AFTER:
            self.add(replace(progress, updated=now, bytes=self._samples[-1][1]))
        if len(self._samples) >= 2:
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
            if t1 > t0:
                return (b1 - b0) / (t1 - t0)
        elapsed = progress.updated - progress.started
        return progress.bytes / elapsed if elapsed > 0 and progress.bytes > 0 else None


def seconds_left(progress: Progress, rate: float | None) -> float | None:
    """Time until the current send's estimate is reached; None when it cannot be told."""
    if progress.estimate is None or not rate or rate <= 0:
        return None
    return max(progress.estimate - progress.bytes, 0) / rate


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(count: float) -> str:
    """``1536`` → ``1.5 KiB``; bytes below 1 KiB as a whole number."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_rate(rate: float | None) -> str:
    return "-- /s" if rate is None else f"{format_bytes(rate)}/s"


def format_duration(seconds: float) -> str:
    """``75`` → ``1m15s``; ``3725`` → ``1h02m``; ``93600`` → ``1d02h``; under a minute ``42s``."""
    rest = max(round(seconds), 0)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def describe(progress: Progress, rate: float | None, now: float | None = None) -> str:
    """One progress line, e.g.
    ``data/smbvol inc: 45.2 MiB sent, 12.1 MiB/s, 38% of ~118.0 MiB, about 6s left`` or, where
    ZFS cannot estimate, ``data/smbvol inc: 45.2 MiB sent, 12.1 MiB/s, 4s elapsed``."""
    now = progress.updated if now is None else now
    if progress.bytes == 0:
        return f"{progress.dataset} {progress.kind}: transfer starting"
    parts = [f"{format_bytes(progress.bytes)} sent", format_rate(rate)]
    if progress.estimate:
        percent = min(100 * progress.bytes / progress.estimate, 100)
        parts.append(f"{percent:.0f}% of ~{format_bytes(progress.estimate)}")
        left = seconds_left(progress, rate)
        parts.append(f"about {format_duration(left)} left" if left is not None else "time left unknown")
    else:
        parts.append(f"{format_duration(now - progress.started)} elapsed")
    if progress.sends > 1:
        parts.append(f"send {progress.send}/{progress.sends}")
    return f"{progress.dataset} {progress.kind}: " + ", ".join(parts)


def stale(progress: Progress, runner: dict | None) -> bool:
    """Whether a progress file belongs to another run than the task's recorded one."""
    return runner is None or Runner.from_record(progress.runner) != Runner.from_record(runner)

