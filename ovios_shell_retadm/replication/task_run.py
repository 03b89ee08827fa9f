"""One run of one task, from lock to log: what ``init``'s background send and ``inc`` do.

A run takes the task's lock (a second run of the same task is refused, never
queued), records who it is, observes both sides, plans, carries the plan out and
records the outcome.  Every failure becomes the task's ``error`` state with the
one-line reason, and a line in ``repl.log``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .. import zfs
from ..eventlog import log_event
from ..exit_status import BUSY
from ..hosts import HostError, LocalHost, SshHost
from ..zfs import History, ZfsError, ZfsNode
from . import leftovers, planner, retention
from .executor import Outcome, Pair, PlanOutdated
from .model import (
    Plan,
    Refusal,
    RenameDestination,
    ResumeSend,
    Rollback,
    SendFull,
    SendIncremental,
    Step,
    Task,
)
from .pipeline import TransferFailed
from .progress import ProgressFile
from .task_lock import Runner, TaskBusy, TaskLock
from .task_store import BROKEN, DECRYPTED, ERROR, IDLE, PLAIN, RUNNING_FULL, RUNNING_INC, TaskRecord, TaskStore

FULL = "full"
INC = "inc"
REPAIR = "repair"


class RunFailed(Exception):
    """The run did not complete; the message is one line for the user and the log."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


#: ``inc`` refused because another run of the task holds its lock (sysexits' EX_TEMPFAIL:
#: nothing is wrong, try later — cron's next tick will).


def new_snapshot_name(task: Task, now: datetime | None = None) -> str | None:
    """The name of the task's next tracking snapshot; None for a cascade, which takes none."""
    if task.cascade:
        return None
    return f"{task.prefix}{retention.stamp(now or datetime.now(UTC))}"


def keep_name(remote_dataset: str, now: datetime | None = None) -> str:
    """Where ``repair`` keeps a replica that shares nothing with the source any more."""
    now = now or datetime.now(UTC)
    return f"{remote_dataset}-old-{now:%Y%m%dT%H%M%S}"


def destination_node(record: TaskRecord) -> ZfsNode:
    return ZfsNode(SshHost(record.destination))


@dataclass
class Preview:
    """What a run would do: the ``--dry-run`` output."""

    plan: Plan | Refusal
    pipelines: tuple[str, ...]
    estimate: int | None


class TaskRun:
    """One run of one task.

    ``confirmed``: the plan the administrator saw and accepted (``repair``, ``reverse``).
    The run plans again under the task's lock and carries out a destructive step
    (rollback, keeping the replica aside) only where the confirmed plan had the same
    one; otherwise it stops, naming the difference.  Without it, no confirmation
    stands behind the run (cron's ``inc``).
    """

    def __init__(self, record: TaskRecord, kind: str, tasks: TaskStore | None = None,
                 source: ZfsNode | None = None, destination: ZfsNode | None = None,
                 confirmed: Plan | None = None):
        self.record = record
        self.kind = kind
        self.confirmed = confirmed
        #: the confirmed destructive steps not carried out yet
        self._unspent = list(confirmed.destructive) if confirmed is not None else []
        self._repaired = False
        self.last_plan: Plan | Refusal | None = None
        self.tasks = tasks or TaskStore()
        self.pair = Pair(record.task(), source or ZfsNode(LocalHost()), destination or destination_node(record),
                         log=lambda line: self._event("step", what=line), rate_limit=record.bandwidth)
        #: the task's last run failed or died: it may have left a receive on the partner
        runner = Runner.from_record(record.runner) if record.state in (RUNNING_FULL, RUNNING_INC) else None
        self.after_failure = record.state == ERROR or (runner is not None and not runner.is_alive())
        #: the source's history and this task's holds there, as the check for an unchanged
        #: source read them: the first plan's
        self._source_seen: tuple[History, frozenset[str]] | None = None

    def _event(self, event: str, **fields) -> None:
        log_event(self.record.dataset, self.kind, event, **fields)

    def plan(self) -> Plan | Refusal:
        """What this run does next, from what both sides look like now.

        A partial receive comes first (resumed, or discarded when stale).  A full run
        whose destination already exists — a retry after the first stage landed —
        goes on incrementally from what landed; with nothing in common it is refused,
        so an existing dataset is never overwritten.
        """
        seen, self._source_seen = self._source_seen, None
        source, holds = seen if seen is not None else (None, None)
        observed = self.pair.observe(self.record.last_guid, source=source, source_holds=holds)
        resume = planner.plan_resume(observed)
        if resume is not None:
            return resume
        if self.kind == REPAIR and not self._repaired:
            self._repaired = True
            repair = planner.plan_repair(observed, self.pair.task, keep_name(self.record.remote_dataset))
            if repair is not None:
                return repair
        full = self.kind in (FULL, REPAIR) and observed.destination is None
        plan_for = planner.plan_full if full else planner.plan_incremental
        return plan_for(observed, self.pair.task, new_snapshot_name(self.pair.task))

    def preview(self) -> Preview:
        """The plan and its command lines; reads both sides and changes nothing."""
        try:
            plan = self.last_plan = self.plan()
        except (HostError, ZfsError) as exc:
            raise RunFailed(str(exc)) from exc
        pipelines: tuple[str, ...] = ()
        estimate = None
        if isinstance(plan, Plan):
            sends = [s for s in plan.steps if isinstance(s, (SendFull, SendIncremental, ResumeSend))]
            pipelines = tuple(self.pair.pipeline_text(step) for step in sends)
            estimate = self._estimate(plan)
        return Preview(plan, pipelines, estimate)

    def _estimate(self, plan: Plan) -> int | None:
        """Bytes written since the common snapshot, where ZFS can tell (``written@``)."""
        source = self.pair.source
        if plan.common is None or not plan.sends or not source.capabilities().written:
            return None
        prop = f"written@{plan.common.name}"
        try:
            value = source.get_properties(self.record.dataset, [prop]).get(prop)
            return int(value) if value and value.isdigit() else None
        except (HostError, ZfsError, ValueError):
            return None

    def run(self) -> Outcome:
        if self.record.state == BROKEN:
            raise RunFailed(f"the relationship is broken: {self.record.error}")
        lock = TaskLock(self.record.key)
        try:
            lock.acquire()
        except TaskBusy:
            raise RunFailed(self._busy_message(), BUSY) from None
        try:
            self.record = reread_under_lock(self.record, self.tasks)
            return self._run_locked()
        finally:
            lock.release()

    def _execute_plans(self) -> Outcome:
        """Plan and carry out until the plan is a normal one (after a resume, plan again)."""
        total: Outcome | None = None
        for _ in range(_MAX_ROUNDS):
            plan = self.plan()
            if isinstance(plan, Refusal):
                raise RunFailed(f"refused: {plan.describe()}")
            if self.confirmed is not None:
                plan = self._as_confirmed(plan)
            total = _merge(total, self.pair.execute(plan))
            if not plan.needs_replan:
                return total
        raise RunFailed("the destination still has a partial receive after resuming it; see 'zfs get "
                        f"receive_resume_token {self.record.remote_dataset}' on {self.record.destination}")

    def _as_confirmed(self, plan: Plan) -> Plan:
        """``plan`` with each destructive step matched to one the administrator confirmed
        (a replica kept aside keeps the confirmed name); a step without its match stops the run."""
        steps: list[Step] = []
        for planned in plan.steps:
            if not isinstance(planned, Rollback | RenameDestination):
                steps.append(planned)
                continue
            match = next((c for c in self._unspent if _same_change(c, planned)), None)
            if match is None:
                confirmed = "; ".join(c.describe() for c in self._unspent) or "nothing destructive"
                raise RunFailed(f"refused: the destination changed since the plan was confirmed: it now needs "
                                f"'{planned.describe()}', the confirmed plan had {confirmed}; nothing more was "
                                f"changed: run the command again to see the new plan")
            self._unspent.remove(match)
            steps.append(match)
        return replace(plan, steps=tuple(steps))

    def _end_leftover_receives(self) -> None:
        """Before anything else, after a run that failed or died: stop the ``zfs receive`` it
        left on the partner when the connection that fed it is gone (see :mod:`.leftovers`),
        and give one that is still ending (its connection alive) a moment to end."""
        host = self.pair.destination.host
        remote, partner = self.record.remote_dataset, self.record.destination

        def running() -> list[leftovers.Receive]:
            return leftovers.parse_receives(host.run(leftovers.listing_argv()).stdout, remote)

        receives = running()
        if not receives:
            return
        for receive in leftovers.orphaned(receives, leftovers.local_connections(), leftovers.is_local_address):
            self._event("step", what=f"stop '{receive.args}' (pid {receive.pid}, {receive.seconds}s old) on "
                                     f"{partner}: a dead run left it, the connection that fed it is gone")
            host.run(leftovers.stop_argv(receive))
        deadline = time.monotonic() + _LEFTOVER_WAIT
        while receives and time.monotonic() < deadline:
            time.sleep(_LEFTOVER_POLL)
            receives = running()
        if receives:
            r = max(receives, key=lambda r: r.seconds)
            raise RunFailed(f"'{r.args}' (pid {r.pid}, running for {r.seconds}s) on {partner} is not this run's and "
                            "did not end; wait for it, or stop it there if it is stuck")

    def _execute_with_progress(self) -> Outcome:
        """:meth:`_execute_plans`, publishing the transfers' progress for ``retadm watch``
        (``run_dir/progress``); the file goes when the run ends, however it ends."""
        progress = ProgressFile(self.record.dataset, self.kind, name=self.record.key.file_name)
        progress.close()  # whatever a run that died left behind
        self.pair.progress = progress
        try:
            return self._execute_plans()
        finally:
            self.pair.progress = None
            progress.close()

    def _recorded_mode(self) -> dict:
        """For a task set up before send modes (or stream flags) existed: the mode it has always
        had (never raw), so that status and doctor can say a replica of an encrypted source is
        decrypted; and the flags it has always sent with: none (``-L`` must never come later)."""
        recorded: dict = {} if self.record.send_flags is not None else {"send_flags": []}
        if self.record.send_mode is not None:
            return recorded
        try:
            encryption = self.pair.source.encryption(self.record.dataset)
        except (HostError, ZfsError):
            return recorded  # the next run tries again
        return {**recorded, "send_mode": DECRYPTED if encryption is not None and encryption.encrypted else PLAIN}

    def _busy_message(self) -> str:
        record = self.tasks.get(self.record.key) or self.record
        runner = Runner.from_record(record.runner)
        who = f" (pid {runner.pid})" if runner else ""
        return f"{self.record.dataset}: a replication run{who} is still in progress; not started"

    def _unchanged(self) -> bool:
        """Whether this is a cron run that can end before it contacts the destination: the
        task's last run completed and the source is as it left it (see
        :func:`planner.unchanged_since_recorded`).  Only where ZFS can tell (``written``), and
        only once the pool has committed what was written (a write of the last seconds is not
        in ``written`` before): ``zpool sync``, one ``zfs get``, and ``zfs holds`` of the held
        snapshots, which the run's plan then uses as they are."""
        record = self.record
        if self.kind != INC or self.confirmed is not None or self.after_failure or record.state != IDLE \
                or not record.initialised or not self.pair.source.capabilities().written:
            return False
        self.pair.source.sync_pool(zfs.pool_of(record.dataset))
        history, snapshots = self.pair.source_history()
        holds = self.pair.held_on_source(history.snapshots)
        self._source_seen = (history, holds)
        return planner.unchanged_since_recorded(snapshots, history.written, self.pair.task, record.last_guid, holds)

    def _end_unchanged(self) -> Outcome:
        self.tasks.update(self.record.key, last_success=time.time())
        self._event("unchanged", snapshot=self.record.last_snapshot, to=self.record.target)
        return Outcome(common=self.record.last_snapshot, common_guid=self.record.last_guid, destination_seen=False)

    def _run_locked(self) -> Outcome:
        try:
            if self._unchanged():
                return self._end_unchanged()
        except (HostError, ZfsError):
            self._source_seen = None  # the run itself looks again, and fails with the reason
        running = RUNNING_FULL if self.kind == FULL else RUNNING_INC
        self.tasks.update(self.record.key, state=running, runner=Runner.current().to_record(), error=None)
        started = time.monotonic()
        self._event("start", to=f"{self.record.destination}:{self.record.remote_dataset}", pid=os.getpid())
        try:
            if self.after_failure:
                self._end_leftover_receives()
            outcome = self._execute_with_progress()
        except Exception as exc:  # whatever stops the run, the record must not claim it still runs
            message = str(exc).strip().replace("\n", " ")
            if not isinstance(exc, (RunFailed, HostError, ZfsError, TransferFailed, PlanOutdated, OSError)):
                message = f"internal error: {type(exc).__name__}: {message}"
            self.tasks.update(self.record.key, state=ERROR, runner=None, error=message)
            self._event("error", message=message, duration=f"{time.monotonic() - started:.1f}s",
                        to=self.record.target)  # which of the dataset's tasks (fan-out)
            raise RunFailed(message) from exc
        self.tasks.update(
            self.record.key, state=IDLE, runner=None, error=None, initialised=True,
            last_success=time.time(), last_snapshot=outcome.common, last_guid=outcome.common_guid,
            last_bytes=outcome.bytes, last_seconds=round(outcome.seconds, 3), **self._recorded_mode(),
        )
        self._event("end", snapshot=outcome.common, bytes="unknown" if outcome.bytes is None else outcome.bytes,
                    sends=outcome.sends,
                    duration=f"{time.monotonic() - started:.1f}s", to=self.record.target)
        return outcome


class TaskReset:
    """``retadm reset``: the task and its marks go; the replicated data stays on both sides."""

    def __init__(self, record: TaskRecord, tasks: TaskStore | None = None,
                 source: ZfsNode | None = None, destination: ZfsNode | None = None):
        self.record = record
        self.tasks = tasks or TaskStore()
        self.pair = Pair(record.task(), source or ZfsNode(LocalHost()), destination or destination_node(record),
                         log=lambda line: log_event(record.dataset, "reset", "step", what=line))

    def plan(self) -> tuple[Plan, str | None]:
        """The steps, and what is left behind when the destination cannot be reached."""
        try:
            return planner.plan_reset(self.pair.observe(), self.pair.task), None
        except HostError as exc:
            left = (f"{self.record.destination} is unreachable ({exc}); its holds and tracking snapshots on "
                    f"{self.record.remote_dataset} were left in place")
        try:
            return planner.plan_reset(self.pair.observe(source_only=True), self.pair.task), left
        except (HostError, ZfsError) as exc:
            raise RunFailed(str(exc)) from exc

    def run(self) -> tuple[Plan, str | None]:
        lock = TaskLock(self.record.key)
        try:
            lock.acquire()
        except TaskBusy:
            raise RunFailed(f"{self.record.dataset}: a replication run is in progress; reset it when it is idle",
                            BUSY) from None
        try:
            self.record = reread_under_lock(self.record, self.tasks)
            plan, left = self.plan()
            try:
                outcome = self.pair.execute(plan)
            except (HostError, ZfsError) as exc:
                raise RunFailed(f"reset stopped: {exc}; the task is kept, run reset again") from exc
            if outcome.kept:
                busy = (f"{', '.join(outcome.kept)} stayed: busy (held by another tag, or being sent); "
                        "destroy it by hand once released")
                left = f"{left}; {busy}" if left else busy
            self.tasks.delete(self.record.key)
            log_event(self.record.dataset, "reset", "end", left=left or "nothing")
            return plan, left
        finally:
            lock.release()


def reread_under_lock(record: TaskRecord, tasks: TaskStore) -> TaskRecord:
    """The task's record as it is now that its lock is held: the one read before may be of a
    task that was reset (or reset and set up again) meanwhile, and a run of that one would
    leave snapshots, holds and ``readonly`` for a task that no longer exists.  The task is
    the one with the record's key (the dataset's other tasks, to other destinations, are not it)."""
    current = tasks.get(record.key)
    if current is None:
        raise RunFailed(f"the task of {record.dataset} was removed meanwhile (retadm reset); nothing was done")
    if (current.task(), current.created) != (record.task(), record.created):
        raise RunFailed(f"the task of {record.dataset} was changed meanwhile (now to "
                        f"{current.destination}:{current.remote_dataset}); nothing was done, run it again")
    return current


def _same_change(confirmed: Rollback | RenameDestination, planned: Rollback | RenameDestination) -> bool:
    """A rollback is the same when it goes to the same snapshot destroying the same ones; keeping
    the replica aside is the same whatever name the clock gave it (the confirmed one is used)."""
    if isinstance(confirmed, RenameDestination):
        return isinstance(planned, RenameDestination)
    return confirmed == planned


_MAX_ROUNDS = 3  # a resume (or discard), then the normal plan; one spare
#: how long a leftover receive on the partner gets to end once stopped (or while ending)
_LEFTOVER_WAIT = 10.0
_LEFTOVER_POLL = 0.2


def _merge(total: Outcome | None, part: Outcome) -> Outcome:
    if total is None:
        return part
    total.bytes = None if total.bytes is None or part.bytes is None else total.bytes + part.bytes
    total.seconds += part.seconds
    total.sends += part.sends
    total.kept += part.kept
    total.common, total.common_guid = part.common, part.common_guid
    return total
