"""``retadm watch``: follow a running transfer, its bytes, rate and time left, until it ends.

Rendering only; the progress a run publishes is read with :mod:`ovios_shell_retadm.replication.progress`.
"""

from __future__ import annotations

import time

import cmd2

from .. import settings
from ..exit_status import FAILED, INTERRUPTED, USAGE, CommandError
from ..plain_commands import add_dest_option
from ..replication import progress
from ..replication.task_store import ERROR, RUNNING_FULL, RUNNING_INC, Status, TaskRecord, TaskStore, effective_status
from .retadm_base import RetadmCommandSet, replicated_datasets

_RUNNING = (RUNNING_FULL, RUNNING_INC)
_WATCH_POLL = 0.5  # seconds between two looks at the progress file
_PLAIN_INTERVAL = 2.0  # without a terminal: at most one line per this many seconds


def _watch_parser() -> cmd2.Cmd2ArgumentParser:
    watch = cmd2.Cmd2ArgumentParser(
        description="Live progress of the running transfer (bytes sent, rate, and the estimated total and time "
        "left where ZFS can estimate), until it ends; then its result. Ctrl-C stops watching, not the transfer. "
        "Without a dataset: the one running transfer.",
    )
    watch.add_argument("dataset", nargs="?", help="the replicated dataset", choices_provider=replicated_datasets)
    add_dest_option(watch, "the one")
    watch.add_argument("--dry-run", action="store_true", help="accepted like everywhere; watch changes nothing")
    return watch


class _Shown:
    """What ``watch`` has printed so far."""

    def __init__(self):
        self.line = ""
        self.printed_at = 0.0
        self.was_progress = False
        self.seen = False  # a progress count was seen
        self.open_line = False  # a terminal line without its newline yet


def _result_line(record: TaskRecord, status: Status) -> str:
    """A task's last result: ``data/smbvol: idle — …`` or ``data/smbvol: error — reason``."""
    if status.word == ERROR:
        return f"{record.dataset}: error — {status.reason}"
    if status.word in _RUNNING:
        return f"{record.dataset}: {status.word}"
    if record.last_success is None:
        return f"{record.dataset}: {status.word} — no successful run yet"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.last_success))
    sent = "size unknown" if record.last_bytes is None else progress.format_bytes(record.last_bytes)
    took = f" in {record.last_seconds:.1f}s" if record.last_seconds is not None else ""
    return (f"{record.dataset}: {status.word} — replicated to {record.destination}:{record.remote_dataset} "
            f"at @{record.last_snapshot} on {when} ({sent}{took})")


class WatchCommands(RetadmCommandSet):
    """``retadm watch``: a subcommand of :class:`~.retadm.RetadmCommands`' ``retadm``."""

    @cmd2.as_subcommand_to("retadm", "watch", _watch_parser,
                           help="follow the running transfer of a dataset: bytes, rate, time left")
    def _watch(self, args) -> int:
        records = self._records(args.dataset, args.dest)
        running = [r for r in records if effective_status(r).word in _RUNNING]
        if not running:
            if not records:
                self.out("no transfer is running (there are no replication tasks)")
                return 0
            target = f" for {args.dataset}" if args.dataset else ""
            self.out(f"no transfer is running{target}; the last result:")
            for record in records:
                self.out(f"  {_result_line(record, effective_status(record))}")
            return 0
        if len(running) > 1:
            names = ", ".join(r.dataset for r in running)
            raise CommandError(f"{len(running)} transfers are running ({names}); name one: retadm watch DATASET",
                               USAGE)
        return self._follow(running[0])

    def _follow(self, record: TaskRecord) -> int:
        """Print the transfer's progress until its run ends; then its result."""
        dataset, key, tasks = record.dataset, record.key, TaskStore()
        tty = self._cmd.stdout.isatty()
        meter = progress.RateMeter()
        shown = _Shown()
        try:
            while True:
                latest = tasks.get(key)
                if latest is None:
                    self._end_line(tty, shown)
                    raise CommandError(f"{dataset}: the task was removed while watching")
                record = latest
                status = effective_status(record)
                if status.word not in _RUNNING:
                    break
                current = progress.read_progress(key.file_name)
                now = time.time()
                if current is not None and not progress.stale(current, record.runner):
                    meter.add(current)
                    shown.seen = True
                    # a count of 0 is the start of a send: shown, but not yet as progress
                    line = progress.describe(current, meter.rate(current, now), now)
                    is_progress = current.bytes > 0
                else:
                    phase = "sent; settling (holds, pruning)" if shown.seen else "preparing"
                    line, is_progress = f"{dataset} {status.word}: {phase}", False
                self._show(line, is_progress, tty, shown, now)
                time.sleep(_WATCH_POLL)
        except KeyboardInterrupt:
            self._end_line(tty, shown)
            self.out(f"stopped watching; the transfer of {dataset} goes on in the background "
                     f"('retadm status', {settings.repl_log_path()})")
            return INTERRUPTED
        self._end_line(tty, shown)
        self.out(_result_line(record, status))
        return FAILED if status.word == ERROR else 0

    def _show(self, line: str, is_progress: bool, tty: bool, shown: _Shown, now: float) -> None:
        if tty:
            self._cmd.stdout.write("\r" + line + "\x1b[K")
            self._cmd.stdout.flush()
            shown.open_line = True
            return
        due = now - shown.printed_at >= _PLAIN_INTERVAL or is_progress != shown.was_progress
        if line != shown.line and due:
            self.out(line)
            shown.line, shown.printed_at, shown.was_progress = line, now, is_progress

    def _end_line(self, tty: bool, shown: _Shown) -> None:
        if tty and shown.open_line:
            self._cmd.stdout.write("\n")
            self._cmd.stdout.flush()
            shown.open_line = False
