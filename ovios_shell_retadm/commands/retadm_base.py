"""What the command sets making up ``retadm`` share: their base class and their parsers' helpers.

``retadm`` itself is :class:`~.retadm.RetadmCommands`' command; other command sets add
subcommands to it (:mod:`.failover`, :mod:`.watch`).
"""

from __future__ import annotations

import cmd2

from ..exit_status import FAILED, USAGE
from ..hosts import HostError, LocalHost
from ..replication import preflight
from ..replication.model import Plan
from ..replication.task_run import RunFailed, TaskRun
from ..replication.task_store import TaskChoiceError, TaskRecord, TaskStore
from ..store import StoreError
from ..zfs import ZfsError, ZfsNode
from .base import CommandError, OviosCommandSet

#: how long a completion may wait for `zfs list` (completion runs in a worker thread)
_COMPLETION_TIMEOUT = 5


# -- the parsers' helpers -------------------------------------------------------------------

def replicated_datasets(_self) -> cmd2.Choices:
    """Completes a dataset that has a replication task."""
    try:
        return cmd2.Choices.from_values(sorted({record.dataset for record in TaskStore().all()}))  # once each
    except StoreError:
        return cmd2.Choices.from_values(())


def local_unreplicated_datasets(_self) -> cmd2.Choices:
    """Completes a dataset of this node that has no replication task."""
    try:
        node = ZfsNode(LocalHost(), timeout=_COMPLETION_TIMEOUT)
        return cmd2.Choices.from_values(preflight.replicable_datasets(node, TaskStore()))
    except (HostError, ZfsError, StoreError, OSError):
        return cmd2.Choices.from_values(())


def add_dest_option(parser: cmd2.Cmd2ArgumentParser, what: str) -> None:
    """``--dest``, choosing among a dataset's tasks (``what``: "the one", "only the one")."""
    parser.add_argument("--dest", metavar="HOST[:REMOTE]",
                        help=f"{what} of the dataset's tasks whose destination host (or remote dataset, or "
                        "both as HOST:REMOTE) this is; needed when the dataset is replicated to several")


# -- the command sets -----------------------------------------------------------------------

class RetadmCommandSet(OviosCommandSet):
    """A command set of ``retadm``: choosing tasks and showing a run's plan."""

    def _records(self, dataset: str | None, dest: str | None) -> list[TaskRecord]:
        """Every task (no dataset), or the one task of ``dataset`` that ``dest`` chooses."""
        if dataset is None:
            if dest is not None:
                raise CommandError("--dest chooses among a dataset's tasks: name the dataset too", USAGE)
            return TaskStore().all()
        return [self._choose(dataset, dest)]

    def _choose(self, dataset: str, dest: str | None) -> TaskRecord:
        """The task of ``dataset`` that ``--dest`` names (needed only when it has several)."""
        try:
            return TaskStore().choose(dataset, dest)
        except TaskChoiceError as exc:
            several = dest is not None or len(TaskStore().of(dataset)) > 1
            raise CommandError(str(exc), USAGE if several else FAILED) from exc

    def _preview(self, run: TaskRun, title: str = "dry run") -> int:
        """Print what ``run`` would do, under ``title``; FAILED when its plan is a refusal."""
        try:
            preview = run.preview()
        except RunFailed as exc:
            raise CommandError(str(exc)) from exc
        task = run.pair.task
        self.out(f"{title}: {task.dataset} -> {task.destination}:{task.remote_dataset} (nothing is changed yet)"
                 if title != "dry run" else
                 f"dry run: {task.dataset} -> {task.destination}:{task.remote_dataset} (nothing is changed)")
        if not isinstance(preview.plan, Plan):
            self.out(f"  refused: {preview.plan.describe()}")
            return FAILED
        for line in preview.plan.describe():
            self.out(f"  {line}")
        if preview.plan.needs_replan:
            self.out("  then: a normal run from what the destination has afterwards")
        for pipeline in preview.pipelines:
            self.out(f"  command: {pipeline}")
        if preview.plan.sends:
            estimate = f"about {preview.estimate} bytes" if preview.estimate is not None else \
                "not available from this ZFS"
            self.out(f"  size estimate: {estimate}")
        return 0
