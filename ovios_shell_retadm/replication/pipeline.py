"""The byte stream: ``zfs send`` → ``pv`` → ``ssh … zfs receive`` through OS pipes.

The stream never passes through Python: each stage's stdout *is* the next one's
stdin.  The bytes are counted by ``pv`` (which moves them with ``splice``), whose
running count is read beside the stream.  The kernel's per-process counters are
no substitute: zfs-fuse's daemon, not the ``zfs send`` process, writes the stream,
and an ssh multiplexing client hands its stdin to the master without reading it.
Without ``pv`` the stream goes straight from sender to receiver, uncounted.

A transfer whose count does not move for ``stall_timeout`` seconds (the option
``retadm.stall.timeout``) is stopped: every stage is killed and :class:`TransferStalled`
says so, so that a wedged send (a receiver stopped, a link that carries nothing) ends
its run and frees the task's lock instead of holding it for ever.

The stages are ``subprocess.Popen`` objects, not ``sh`` commands (which run every other
``zfs`` and ``ssh`` call, see ``hosts.py``): the pipeline polls, kills and reaps three
processes joined by OS pipes itself, and sh's own waiting polls each process every 0.1 s
(measured: 119 ms per command with ``_timeout`` against 16 ms), where a small increment
takes a fraction of a second.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from .progress import format_bytes

#: the longest the count and the stall check wait for each other; the end of the stream is seen
#: at once (a small increment takes a fraction of a second: a poll's sleep would add to it)
_POLL = 0.05
#: numeric byte count, one line per interval and a last one at the end
_METER = ("pv", "--numeric", "--bytes", "--force", "--interval", "1")


@dataclass(frozen=True)
class TransferResult:
    bytes: int | None  # None when no meter was available
    seconds: float
    #: what the receiving stage printed (stdout and stderr)
    receiver_output: str = ""


class TransferFailed(Exception):
    """Sender or receiver failed; the message says, on one line, which and why, how far the
    stream got and what the next run does (see :func:`describe_failure`)."""

    def __init__(self, message: str, sender_status: int, receiver_status: int, receiver_words: str = "",
                 moved: int | None = None):
        super().__init__(message)
        self.sender_status = sender_status
        self.receiver_status = receiver_status
        #: the receiving stage's own last line (empty when it said nothing)
        self.receiver_words = receiver_words
        #: bytes that had moved when it failed (None: no meter)
        self.moved = moved


class TransferStalled(TransferFailed):
    """No byte moved for the stall timeout: the pipeline was killed."""


#: ``stall_timeout`` not given: the configured one (the option ``retadm.stall.timeout``)
CONFIGURED: float = -1.0


def _lines(handle: IO[bytes]) -> list[str]:
    # pread: the stage writing to this file shares its offset, which a seek would move under it
    fd = handle.fileno()
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    return [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]


def _count(handle: IO[bytes]) -> int | None:
    numbers = [line for line in _lines(handle) if line.isdigit()]
    return int(numbers[-1]) if numbers else None


def _last_words(handle: IO[bytes]) -> str:
    lines = _lines(handle)
    return lines[-1] if lines else ""


#: what OpenZFS's ``zfs receive -s`` says when it keeps what an interrupted stream brought
_KEPT = ("Partially received snapshot is saved", "zfs send -t ")


def how_far(moved: int | None) -> str:
    """`` after 10.2 MiB`` (what a meter counted), or nothing without one."""
    if moved is None:
        return ""
    return " before any data moved" if moved == 0 else f" after {format_bytes(moved)}"


def describe_failure(sender_status: int, receiver_status: int, sender_said: list[str], receiver_said: list[str],
                     moved: int | None) -> str:
    """One line: which side failed and why (killed by a signal, its own error, the receiver
    refusing the stream), how far the stream got, and what the next run does with it."""
    receiver_reason = next((line for line in receiver_said if line.startswith("cannot ")),
                           next((line for line in reversed(receiver_said)
                                 if not line.startswith(("zfs send -t ", "A resuming stream", "Partially received"))),
                                ""))
    if sender_status < 0 and sender_status != -signal.SIGPIPE:
        what = f"zfs send was killed by {_signal_name(-sender_status)}"
    elif sender_status not in (0, -signal.SIGPIPE):
        what = f"zfs send failed: {sender_said[-1]}" if sender_said else f"zfs send exited {sender_status}"
    elif receiver_status < 0:
        what = f"zfs receive was killed by {_signal_name(-receiver_status)}"
    else:
        what = f"zfs receive refused the stream: {receiver_reason}" if receiver_reason else \
            f"zfs receive exited {receiver_status}"
    kept = any(line.startswith(_KEPT) for line in receiver_said)
    then = "the partial receive was kept: the next run resumes from there" if kept else \
        "no partial receive was kept: the next run starts this send over"
    return f"{what}{how_far(moved)}; {then}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill(stages: Sequence[subprocess.Popen]) -> None:
    """Kill every stage still running and reap them all."""
    for stage in stages:
        if stage.poll() is None:
            stage.kill()
    for stage in stages:
        stage.wait()


def _meter(rate_limit: int | None = None) -> list[str] | None:
    """pv, counting (and, with ``rate_limit`` bytes a second, holding the stream to it)."""
    if not shutil.which(_METER[0]):
        return None
    return [*_METER, *(["--rate-limit", str(rate_limit)] if rate_limit else [])]


_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?(?:/s)?", re.IGNORECASE)


def parse_rate(text: str) -> int:
    """A bandwidth as people write it (``10M``, ``512K``, ``1.5G``, ``20MiB/s``; powers of 1024,
    as pv counts) in bytes a second; ValueError with the reason otherwise."""
    found = _RATE.fullmatch(text.strip())
    if not found:
        raise ValueError(f"invalid bandwidth {text!r}: a number with K, M or G (e.g. 10M, 512K)")
    power = " kmgt".index(found.group(2).lower() or " ")  # no suffix: bytes
    rate = int(float(found.group(1)) * 1024 ** power)
    if rate < 1024:
        raise ValueError(f"invalid bandwidth {text!r}: at least 1K a second")
    return rate


def command_line(send_argv: Sequence[str], receive_argv: Sequence[str], rate_limit: int | None = None) -> str:
    """The pipeline :func:`transfer` runs, as a shell would write it (for ``--dry-run``)."""
    meter = _meter(rate_limit)
    stages = [send_argv, *([meter] if meter else []), receive_argv]
    return " | ".join(shlex.join(stage) for stage in stages)


def transfer(
    send_argv: Sequence[str],
    receive_argv: Sequence[str],
    *,
    on_progress: Callable[[int], None] | None = None,
    stall_timeout: float | None = CONFIGURED,
    rate_limit: int | None = None,
) -> TransferResult:
    """Run ``send_argv | receive_argv``; raise :class:`TransferFailed` unless both succeed.

    ``stall_timeout``: seconds without a byte moving after which the pipeline is killed and
    :class:`TransferStalled` raised; None: never; by default the configured value.
    ``rate_limit``: bytes a second the stream may not exceed (the meter holds it back).
    """
    if stall_timeout == CONFIGURED:
        from .. import options  # the store is read only by a run that transfers

        stall_timeout = options.stall_timeout()
    meter_argv = _meter(rate_limit)
    if rate_limit and meter_argv is None:
        raise TransferFailed("the task's bandwidth limit needs pv, which is not installed here; nothing was sent",
                             0, 0)
    started = time.monotonic()
    with tempfile.TemporaryFile() as send_err, tempfile.TemporaryFile() as recv_err, \
            tempfile.TemporaryFile() as counts:
        stages: list[subprocess.Popen] = []
        try:
            stages.append(subprocess.Popen(list(send_argv), stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=send_err))
            if meter_argv:
                stages.append(subprocess.Popen(meter_argv, stdin=stages[-1].stdout,
                                               stdout=subprocess.PIPE, stderr=counts))
            stages.append(subprocess.Popen(list(receive_argv), stdin=stages[-1].stdout,
                                           stdout=recv_err, stderr=recv_err))
        except OSError:
            for stage in stages:
                stage.kill()
                stage.wait()
            raise
        finally:
            for stage in stages[:-1]:
                if stage.stdout is not None:  # always: every stage but the last writes to a pipe
                    stage.stdout.close()  # each read end now belongs to the next stage only
        # Without a meter nothing tells a stalled stream from a slow one: it is never stopped.
        watch = meter_argv is not None and stall_timeout is not None
        moved, moved_at = 0, time.monotonic()
        while running := [stage for stage in stages if stage.poll() is None]:
            sent = _count(counts) if (on_progress is not None or watch) else None
            if sent is not None and on_progress is not None:
                on_progress(sent)
            now = time.monotonic()
            if sent is not None and sent > moved:
                moved, moved_at = sent, now
            elif watch and stall_timeout is not None and now - moved_at >= stall_timeout:
                _kill(stages)
                raise TransferStalled(
                    f"no data moved for {stall_timeout:g} s: the transfer was stopped ({moved} bytes had moved; "
                    f"the limit is the option retadm.stall.timeout)",
                    stages[0].returncode, stages[-1].returncode, _last_words(recv_err), moved)
            with contextlib.suppress(subprocess.TimeoutExpired):
                running[-1].wait(_POLL)  # the stage nearest the receiver ends last: back as soon as it has
        sender, receiver = stages[0], stages[-1]
        if sender.returncode != 0 or receiver.returncode != 0:
            # a sender killed by the receiver's death (SIGPIPE) has nothing to say: the side
            # that failed first is named, with what it said
            counted = _count(counts) if meter_argv else None
            raise TransferFailed(
                describe_failure(sender.returncode, receiver.returncode, _lines(send_err), _lines(recv_err), counted),
                sender.returncode, receiver.returncode, _last_words(recv_err), counted,
            )
        sent = _count(counts) if meter_argv else None
        recv_err.seek(0)
        said = recv_err.read().decode(errors="replace")
    return TransferResult(bytes=sent, seconds=time.monotonic() - started, receiver_output=said)
