"""Observing both sides and carrying a plan out: the *how* beside the planner's *what*.

:class:`Pair` is one task's two ZFS nodes.  ``observe`` gathers what the planner
needs in a handful of calls (one to the partner where it can list holds);
``execute`` runs a plan's steps in order, each step one ZFS call or one
send/receive pipeline.  A step that fails stops the plan: the planner ordered the
steps so that stopping anywhere leaves the chain protected, and the next run plans
again from what it then observes.

Every call to the partner is an ssh round trip, so a run's destination steps share
the last receive's connection: those that only protect and mark (the new snapshot's
hold, the origin mark), then, only if they all succeeded, the destination's part of
the tail of releases and destroys.  What is left of that tail runs in one call per
side.  Moving them so changes nothing the plan relies on: the destination lets go of
its old snapshots only once the new one is held there, and the source's own
protection comes later in the plan either way.  A step that fails (or is skipped) in
such a shared call is carried out again in its own place, which reports why as any
step does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .. import zfs
from ..hosts import HostError, SshHost
from ..zfs import ZfsNode
from . import model
from .model import (
    ORIGIN_PROPERTY,
    PROMOTED_PROPERTY,
    AbortResume,
    CreateBookmark,
    CreateSnapshot,
    DestroyBookmark,
    DestroySnapshot,
    Hold,
    MarkOrigin,
    Observed,
    Plan,
    RecordCommon,
    Release,
    RenameDestination,
    ResumeSend,
    Rollback,
    SendFull,
    SendIncremental,
    SetReadonly,
    Side,
    Step,
    Task,
    own_mark,
)
from .pipeline import TransferFailed, TransferResult, command_line, how_far, transfer
from .progress import ProgressFile

#: how many times :meth:`Pair.observe` looks again when a snapshot vanished while it looked
_OBSERVE_TRIES = 3
#: a send of fewer bytes than this (as ``written`` tells before it) ends before anyone could
#: follow its percentage: ZFS is not asked to estimate it (``send -nvP``, one more ``zfs`` call)
_WATCHABLE_SEND = 64 * 1024 * 1024


class PlanOutdated(Exception):
    """What a step would do differs from what its plan said: it was not done."""


@dataclass(frozen=True)
class Riders:
    """The steps that run on the partner right after the plan's last receive, on its
    connection, by their index in the plan.  ``protect``: the new common snapshot's hold
    there, the origin mark and (after a full send) ``readonly``, each whatever the others
    did.  ``let_go``: the destination's part of the plan's tail of releases and destroys,
    only once every ``protect`` step succeeded (the new snapshot held before an old one is
    let go of)."""

    protect: Mapping[int, Step] = field(default_factory=dict)
    let_go: Mapping[int, Step] = field(default_factory=dict)

    def in_order(self) -> dict[int, Step]:
        """Every rider by its index, in the order :func:`zfs.receive_then` runs them and
        reports their statuses: ``protect`` (its ``after``), then ``let_go`` (its ``gated``)."""
        return {**self.protect, **self.let_go}


@dataclass
class Outcome:
    """What a carried-out plan did."""

    bytes: int | None = 0  # None once any send's size could not be counted
    seconds: float = 0.0
    common: str | None = None
    common_guid: int | None = None
    sends: int = 0
    #: the task's own snapshots a prune left in place because they were busy ("@x on the source")
    kept: list[str] = field(default_factory=list)
    #: False: the run ended before it looked at the destination (nothing to send, as recorded)
    destination_seen: bool = True


@dataclass
class Pair:
    """The source (this node) and destination (the partner) of one task."""

    task: Task
    source: ZfsNode
    destination: ZfsNode
    log: Callable[[str], None] = field(default=lambda _line: None)
    #: where a run publishes its transfers' progress (``retadm watch``); None: nowhere
    progress: ProgressFile | None = None
    #: bytes a second the task's streams may not exceed (its bandwidth limit); None: no limit
    rate_limit: int | None = None
    #: the source dataset's type, read once (a zvol has no mountpoint)
    _kind: str | None = field(default=None, init=False, repr=False)
    #: the guids of the snapshots this pair's sends landed, as the partner read them after its receive
    _landed: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    #: the source's newest snapshot when last observed, and the bytes written after it (None: unknown)
    _written_after: tuple[str, int] | None = field(default=None, init=False, repr=False)

    # -- observing ---------------------------------------------------------------

    def capabilities(self) -> model.PairCapabilities:
        """What the planner needs to know: the source's.  (What the destination can do
        matters to how a step runs, not to the plan: the executor asks it when it receives.)"""
        return model.PairCapabilities(bookmarks=self.source.capabilities().bookmarks_on(zfs.pool_of(self.task.dataset)))

    def observe(self, recorded_guid: int | None = None, *, source_only: bool = False,
                source: zfs.History | None = None, source_holds: frozenset[str] | None = None) -> Observed:
        """Both sides as the planner sees them (``source_only``: as if the replica were absent;
        ``source`` and ``source_holds``: the source's history and this task's holds there, read
        just before by the caller).

        Another task of the dataset (fan-out) or of its replica (a cascade) may destroy one of
        its own snapshots between the listing and the look at the holds on them: that snapshot
        is gone, which is no error of this run; both sides are looked at again."""
        for attempt in range(_OBSERVE_TRIES):
            try:
                return self._observe(recorded_guid, source_only=source_only, source=source,
                                     source_holds=source_holds)
            except zfs.NoSuchDataset:
                if attempt == _OBSERVE_TRIES - 1:
                    raise
                source, source_holds = None, None
        raise AssertionError("unreachable")

    def source_history(self) -> tuple[zfs.History, tuple[model.ObservedSnapshot, ...]]:
        """The source's history, and its snapshots as the planner sees them: one local call."""
        history = self.source.history(self.task.dataset)
        return history, tuple(_point(s, model.ObservedSnapshot) for s in history.snapshots)

    def _observe(self, recorded_guid: int | None, *, source_only: bool, source: zfs.History | None,
                 source_holds: frozenset[str] | None) -> Observed:
        if source is None:
            source, source_holds = self.source.history(self.task.dataset), None
        self._learn(source)
        survey = None if source_only else self._survey_destination()
        destination = survey.history if survey else None
        if source_holds is None:
            source_holds = self.held_on_source(source.snapshots)
        destination_holds = _tagged(survey.holds, self.task.tag) if survey else frozenset()
        readonly = origin = promoted = token = None
        if survey is not None:
            marks = survey.properties
            readonly = zfs.readonly_of(marks["readonly"])
            origin, promoted = (own_mark(marks[p]) for p in (ORIGIN_PROPERTY, PROMOTED_PROPERTY))
            token = zfs.resume_token_of(marks[zfs.RESUME_TOKEN][0]) if zfs.RESUME_TOKEN in marks else None
        return Observed(
            source=tuple(_point(s, model.ObservedSnapshot) for s in source.snapshots),
            destination=(tuple(_point(s, model.ObservedSnapshot) for s in destination.snapshots)
                         if destination else None),
            source_bookmarks=tuple(_point(b, model.ObservedBookmark) for b in source.bookmarks),
            resume_token=token,
            resume_token_valid=self._resume_token_valid(token) if token else None,
            source_holds=source_holds,
            destination_holds=destination_holds,
            written=source.written,
            capabilities=self.capabilities(),
            destination_readonly=readonly,
            destination_written=destination.written if destination else None,
            recorded_guid=recorded_guid,
            destination_origin=origin,
            destination_promoted=promoted,
        )

    def _learn(self, source: zfs.History) -> None:
        """What the source's listing tells beyond the plan: its type (read once) and how much
        was written after its newest snapshot."""
        if source.kind and self._kind is None:
            self._kind = source.kind
        newest = source.snapshots[-1:]
        self._written_after = (newest[0].name, source.written_bytes) \
            if newest and source.written_bytes is not None else None

    def _survey_destination(self) -> zfs.Survey | None:
        """The replica's history, marks, partial receive and this task's holds, in one call
        (None: there is no replica)."""
        marks = ["readonly", ORIGIN_PROPERTY, PROMOTED_PROPERTY]
        if self.destination.capabilities().resume_tokens:
            marks.append(zfs.RESUME_TOKEN)
        return self.destination.survey(self.task.remote_dataset, marks, self.task.tag)

    def _resume_token_valid(self, token: str) -> bool:
        """True: the source can send from ``token``; False: ZFS says its snapshot is gone (the
        partial receive may be discarded).  When the check itself fails nothing may be decided:
        :class:`zfs.ResumeCheckFailed`, and the partial receive stays for a later run."""
        check = self.source.check_resume_token(token)
        if check.state == zfs.RESUME_UNKNOWN:
            remote, partner = self.task.remote_dataset, self.destination.host.name
            raise zfs.ResumeCheckFailed(
                f"cannot tell whether the interrupted transfer into {remote} on {partner} can be resumed "
                f"(zfs send -n -v -t: {check.detail}); its partial receive was kept: the next run checks again "
                f"('zfs receive -A {remote}' on {partner} discards it)")
        return check.state == zfs.RESUME_VALID

    def held_on_source(self, snapshots: Sequence[zfs.Snapshot]) -> frozenset[str]:
        """Which of the source's ``snapshots`` carry this task's hold (its tag; other tags are
        other tasks'): one ``zfs holds`` of those held at all, none if no snapshot is."""
        held = [s.full for s in snapshots if s.userrefs > 0]  # only these can carry our tag
        if not held:
            return frozenset()
        return _tagged(self.source.holds(held, tags=[self.task.tag]), self.task.tag)

    # -- commands ----------------------------------------------------------------

    def send_argv(self, step: SendFull | SendIncremental | ResumeSend) -> list[str]:
        return self.source.host.argv_for(self._zfs_send_argv(step))

    def _zfs_send_argv(self, step: SendFull | SendIncremental | ResumeSend) -> list[str]:
        caps = self.source.capabilities()
        if isinstance(step, ResumeSend):
            return zfs.resume_send_argv(step.token, caps=caps)  # the token carries the stream's flags
        # the task's recorded flags, whatever the probes say now; a raw stream (-w) carries the
        # blocks as they are on disk, large and compressed, by itself
        flags = () if step.raw else self.task.send_flags
        large, compressed, embedded = (flag in flags for flag in (zfs.LARGE_BLOCKS, zfs.COMPRESSED, zfs.EMBEDDED))
        if isinstance(step, SendFull):
            return zfs.send_argv(self.task.dataset, step.snapshot, properties=step.properties, caps=caps,
                                 raw=step.raw, large_blocks=large, compressed=compressed, embedded=embedded)
        return zfs.send_argv(self.task.dataset, step.target, base=step.base,
                             base_is_bookmark=step.base_is_bookmark,
                             intermediates=not step.base_is_bookmark,
                             properties=step.properties, caps=caps, raw=step.raw,
                             large_blocks=large, compressed=compressed, embedded=embedded)

    def estimate_send(self, step: SendFull | SendIncremental | ResumeSend) -> int | None:
        """Bytes ZFS expects the send to produce (``send -nvP``); None where it cannot tell, or
        for a send from the newest snapshot that the bytes written since show to be small."""
        if not self.source.capabilities().send_estimate or self._small(step):
            return None
        try:
            return self.source.estimate_send_size(self._zfs_send_argv(step))
        except (HostError, zfs.ZfsError):
            return None

    def _small(self, step: SendFull | SendIncremental | ResumeSend) -> bool:
        """Whether ``step`` sends what was written after the source's newest snapshot as last
        observed (a cron run's usual send), and that is less than :data:`_WATCHABLE_SEND`."""
        if not isinstance(step, SendIncremental) or step.base_is_bookmark or self._written_after is None:
            return False
        newest, written = self._written_after
        return step.base == newest and written < _WATCHABLE_SEND

    def receive_argv(self) -> list[str]:
        """The local argv of the receiving stage (as the dry run shows it)."""
        return self.destination.host.argv_for(self._zfs_receive_argv())

    def _zfs_receive_argv(self) -> list[str]:
        # -s where both sides support it, so an interrupted transfer can resume.  A receive
        # never mounts (-u): with properties, the stream carries the source's mountpoint,
        # which may be a directory of the partner's own (/srv/share); -x mountpoint keeps
        # that value for promote without using it.  The replica is mounted (read-only, for
        # the administrator to browse) under its own pool after the receive: settle_mount.
        # (A raw replica, whose key stays on the source, is received all the same and stays
        # unmounted: OpenZFS 2.x)
        caps = self.destination.capabilities()
        exclude = ("mountpoint",) if caps.receive_x and self._filesystem() else ()
        return zfs.receive_argv(self.task.remote_dataset, caps, exclude=exclude)

    def _filesystem(self) -> bool:
        if self._kind is None:
            self._kind = self.source.dataset_type(self.task.dataset) or ""
        return self._kind == "filesystem"

    def settle_mount(self, facts: Mapping[str, tuple[str, str]] | None = None) -> None:
        """After a receive: the replica mounted under its own pool, never at the mountpoint it
        received (the source's).  A replica made before receives hid that value is moved
        under its pool here, at its next run.  Not done (a busy mount): logged, the data has
        arrived all the same, and the next run tries again.  ``facts``: the replica's
        :data:`zfs.MOUNT_FACTS` as read right after the receive (None: read them here)."""
        if not self._filesystem():
            return  # a zvol has no mountpoint
        node, remote = self.destination, self.task.remote_dataset
        try:
            props = facts or node.values_and_sources(remote, zfs.MOUNT_FACTS)
            value, where = props["mountpoint"]
            if where == "received":
                self.log(f"mount {remote} under its pool, not at the source's mountpoint {value} "
                         "(promote mounts it there)")
                node.inherit_property(remote, "mountpoint")  # what -x does, where it is missing
                props = node.values_and_sources(remote, zfs.MOUNT_FACTS)
            if zfs.mount_due(props) and not self.task.raw:
                node.mount(remote)  # (a raw replica cannot be: its key stays on the source)
        except (HostError, zfs.ZfsError) as exc:
            self.log(f"{remote} on {node.host.name} was not mounted under its pool: {exc}")

    def pipeline_text(self, step: SendFull | SendIncremental | ResumeSend) -> str:
        return command_line(self.send_argv(step), self.receive_argv(), self.rate_limit)

    # -- carrying out --------------------------------------------------------------

    def execute(self, plan: Plan) -> Outcome:
        outcome = Outcome(common=plan.common.name if plan.common else None,
                          common_guid=plan.common.guid if plan.common else None)
        if self.progress is not None:
            self.progress.plan_sends(sum(isinstance(s, SendFull | SendIncremental | ResumeSend) for s in plan.steps))
        done: set[int] = set()  # the steps carried out with others (riders, letting go at once)
        letting_go = _letting_go_from(plan)
        for index, step in enumerate(plan.steps):
            if index == letting_go:
                done |= self._let_go_at_once(plan, Side.DESTINATION, done)
                done |= self._let_go_at_once(plan, Side.SOURCE, done)
            if index in done:
                continue
            self.log(step.describe())
            if isinstance(step, SendFull | SendIncremental | ResumeSend):
                done |= self._send(step, self._riders(plan, index), outcome, _lands_target(plan, index))
            else:
                self._carry_out(step, outcome)
        return outcome

    def _let_go_at_once(self, plan: Plan, side: Side, done: set[int]) -> set[int]:
        """The plan's tail of letting go on one side (:func:`_letting_go`; everything is
        protected by the time it begins) in one call there, but for the steps ``done`` already
        (with the receive).  Those that fail are carried out again in their place (a busy
        snapshot is kept, an error reported, as for any step).  Returns the ones done."""
        batch = {index: step for index, step in _letting_go(plan, side).items() if index not in done}
        if len(batch) < 2:
            return set()  # one call either way
        node, _ = self._node(side)
        commands = [self._letting_go_argv(step) for step in batch.values()]
        now = {index for index, ok in zip(batch, node.run_each(commands), strict=True) if ok}
        for index in sorted(now):
            self.log(plan.steps[index].describe())
        return now

    def _letting_go_argv(self, step: Step) -> list[str]:
        """The command of one step of the tail of letting go, on its side."""
        if isinstance(step, Release | DestroySnapshot):
            self._refuse_foreign(step)
            _, dataset = self._node(step.side)
            if isinstance(step, Release):
                return zfs.release_argv(step.tag, [zfs.snapshot_full_name(dataset, step.snapshot)])
            return zfs.destroy_snapshot_argv(dataset, step.snapshot)
        if isinstance(step, DestroyBookmark):
            return zfs.destroy_bookmark_argv(self.task.dataset, step.bookmark)
        raise TypeError(f"{step!r} is not a step of letting go")

    def _refuse_foreign(self, step: Release | DestroySnapshot) -> None:
        """The planner never asks to let go of what is not this task's; refuse anyway."""
        if isinstance(step, Release) and step.tag != self.task.tag:
            raise RuntimeError(f"refusing to release the {step.tag} hold on @{step.snapshot}: not this task's")
        if isinstance(step, DestroySnapshot) and not self.task.may_destroy(step.snapshot, step.side):
            raise RuntimeError(f"refusing to destroy @{step.snapshot}: not a tracking snapshot")

    @staticmethod
    def _riders(plan: Plan, index: int) -> Riders:
        """The steps that ride on the connection of the plan's last send (at ``index``), run on
        the partner right after its receive (:class:`Riders`).  Doing them before the source's
        steps that come first in the plan changes nothing the plan relies on: the source's
        old snapshot stays protected by its own hold and bookmark until the source lets go of
        it.  A rider that fails (or is skipped) there is carried out again in its place in the
        plan, which reports its error as usual."""
        later = plan.steps[index + 1:]
        if any(isinstance(step, SendFull | SendIncremental | ResumeSend) for step in later):
            return Riders()
        protect = {i: step for i, step in enumerate(later, start=index + 1)
                   if isinstance(step, MarkOrigin | SetReadonly)
                   or (isinstance(step, Hold) and step.side is Side.DESTINATION and step.snapshot == plan.target)}
        return Riders(protect, _letting_go(plan, Side.DESTINATION))

    def _rider_argv(self, step: Step) -> list[str]:
        remote = self.task.remote_dataset
        if isinstance(step, Hold):
            return zfs.hold_argv(step.tag, [zfs.snapshot_full_name(remote, step.snapshot)])
        if isinstance(step, MarkOrigin):
            return zfs.set_property_argv(remote, ORIGIN_PROPERTY, step.origin)
        if isinstance(step, SetReadonly):
            return zfs.set_property_argv(remote, "readonly", "on")
        raise TypeError(f"{step!r} does not ride on a receive")

    def _send(self, step: SendFull | SendIncremental | ResumeSend, riders: Riders,
              outcome: Outcome, target: str | None) -> set[int]:
        """One transfer; on the partner, once its receive succeeded, the ``riders``, then in
        one look the replica's mount facts and (``target``: the plan's new snapshot, sent by
        this last send) that snapshot's guid, which is the source's, and the replica's mount
        where :meth:`settle_mount` would make it (one connection for all).  Returns the riders
        carried out."""
        if self.progress is not None:
            self.progress.start_send(self.estimate_send(step))
        remote = self.task.remote_dataset
        landed = [zfs.snapshot_full_name(remote, target)] if target is not None else []
        filesystem = self._filesystem()
        mount = filesystem and not self.task.raw  # (a raw replica cannot be: its key stays on the source)
        look = zfs.settle_argv(remote, landed, mount=mount) if filesystem or landed else None
        ride = riders.in_order()
        receive = self._zfs_receive_argv()
        if ride or look:
            receive = zfs.receive_then(receive, [self._rider_argv(r) for r in riders.protect.values()],
                                       [self._letting_go_argv(r) for r in riders.let_go.values()],
                                       [look] if look else [])
        try:
            result: TransferResult = transfer(self.send_argv(step), self.destination.host.argv_for(receive),
                                              on_progress=self.progress, rate_limit=self.rate_limit)
        except TransferFailed as exc:
            lost = self._lost_connection(exc)
            if lost is None:
                raise
            # ssh's words, then how far the stream got; whether the partner kept a partial
            # receive cannot be known from here: the next run looks
            said = str(lost).removeprefix(f"{lost.host}: ")
            raise type(lost)(lost.host, f"{said}{how_far(exc.moved)}; the next run resumes a partial receive if "
                                        "the partner kept one, else starts this send over") from exc
        outputs, statuses = zfs.parts_of(result.receiver_output)
        done = {index for index, status in zip(ride, statuses, strict=False) if status == 0}
        for index in sorted(done):
            self.log(f"{ride[index].describe()} (with the receive)")
        facts, guids = zfs.parse_settled(outputs[len(ride)], remote) if len(outputs) > len(ride) else (None, {})
        if target is not None and landed[0] in guids:
            self._landed[target] = guids[landed[0]]
        self.settle_mount(facts)
        if self.progress is not None:
            self.progress.end_send(result.bytes)
        outcome.bytes = None if outcome.bytes is None or result.bytes is None else outcome.bytes + result.bytes
        outcome.seconds += result.seconds
        outcome.sends += 1
        return done

    def _lost_connection(self, exc: TransferFailed) -> HostError | None:
        """ssh's failure behind a failed transfer (a lost connection says so, rather than the
        sender's broken pipe); None when the transfer failed on its own."""
        host = self.destination.host
        return host.stream_failure(exc.receiver_status, exc.receiver_words) if isinstance(host, SshHost) else None

    def _node(self, side: Side) -> tuple[ZfsNode, str]:
        if side is Side.SOURCE:
            return self.source, self.task.dataset
        return self.destination, self.task.remote_dataset

    def _check_rollback(self, snapshot: str, lost: Sequence[str]) -> None:
        """``rollback -r`` destroys what the step lists, and nothing else: the destination's
        snapshots are read again right before, and a difference stops the run."""
        remote = self.task.remote_dataset
        names = [s.name for s in self.destination.snapshots(remote)]
        actual = _rollback_loss(names, snapshot)
        if actual is None:
            raise PlanOutdated(f"not rolling {remote} back: @{snapshot} is no longer there")
        if actual != tuple(lost):
            def listing(names: Sequence[str]) -> str:
                return ", ".join(f"@{name}" for name in names) or "no snapshot"
            raise PlanOutdated(f"not rolling {remote} back to @{snapshot}: that would destroy {listing(actual)}, "
                               f"the plan listed {listing(lost)}")

    def _carry_out(self, step: Step, outcome: Outcome) -> None:
        """One step other than a send (:meth:`_send`)."""
        match step:
            case CreateSnapshot(name):
                self.source.snapshot(self.task.dataset, name)
            case Hold(side, snapshot, tag):
                node, dataset = self._node(side)
                node.hold(tag, [zfs.snapshot_full_name(dataset, snapshot)])
            case Release(side, snapshot, tag):
                self._refuse_foreign(step)
                node, dataset = self._node(side)
                node.release(tag, [zfs.snapshot_full_name(dataset, snapshot)])
            case DestroySnapshot(side, snapshot):
                self._refuse_foreign(step)
                node, dataset = self._node(side)
                try:
                    node.destroy_snapshot(dataset, snapshot)
                except zfs.SnapshotCloned:
                    # a clone made from it (files being taken back from a restore point): it goes
                    # once the clone does, at a later run
                    where = f"@{snapshot} on the {side.value}"
                    self.log(f"kept {where}: it has a clone (destroy or promote the clone to let it go)")
                    outcome.kept.append(where)
                except zfs.DatasetBusy:
                    # someone else's hold, or a send still reading it (zfs-fuse keeps the
                    # temporary holds of a killed ``zfs send``): not ours to fight over; the
                    # chain does not need it, and the next run tries again
                    where = f"@{snapshot} on the {side.value}"
                    self.log(f"kept {where}: it is busy (held by another tag, or being sent)")
                    outcome.kept.append(where)
            case CreateBookmark(snapshot, bookmark):
                self.source.bookmark(self.task.dataset, snapshot, bookmark)
            case DestroyBookmark(bookmark):
                self.source.destroy_bookmark(self.task.dataset, bookmark)
            case Rollback(snapshot, lost):
                self._check_rollback(snapshot, lost)
                self.destination.rollback(self.task.remote_dataset, snapshot)
            case RenameDestination(new_name):
                self.destination.rename(self.task.remote_dataset, new_name)
            case AbortResume():
                self.destination.abort_resume(self.task.remote_dataset)
            case SetReadonly():
                self.destination.set_property(self.task.remote_dataset, "readonly", "on")
            case MarkOrigin(origin):
                self.destination.set_property(self.task.remote_dataset, ORIGIN_PROPERTY, origin)
            case RecordCommon(snapshot, guid):
                guid = guid if guid is not None else self._landed.get(snapshot)
                if guid is None:
                    full = zfs.snapshot_full_name(self.task.dataset, snapshot)
                    guid = int(self.source.get_properties(full, ["guid"])["guid"])
                outcome.common, outcome.common_guid = snapshot, guid
            case _:
                raise TypeError(f"unknown step {step!r}")


def _rollback_loss(names: Sequence[str], snapshot: str) -> tuple[str, ...] | None:
    """What ``zfs rollback -r`` to ``snapshot`` destroys among ``names`` (creation order):
    every later snapshot; None when ``snapshot`` is not there."""
    if snapshot not in names:
        return None
    return tuple(names[names.index(snapshot) + 1:])


def _lands_target(plan: Plan, index: int) -> str | None:
    """The plan's new snapshot when the send at ``index`` is the one that lands it: its last
    send, and not a resume (which finishes whatever the interrupted stream was sending)."""
    step = plan.steps[index]
    later = plan.steps[index + 1:]
    if isinstance(step, ResumeSend) or not plan.target \
            or any(isinstance(s, SendFull | SendIncremental | ResumeSend) for s in later):
        return None
    return plan.target


def _letting_go_from(plan: Plan) -> int | None:
    """Where the plan's tail of releases and destroys begins (None: it has none)."""
    start = None
    for index in range(len(plan.steps) - 1, -1, -1):
        if not isinstance(plan.steps[index], Release | DestroySnapshot | DestroyBookmark):
            break
        start = index
    return start


def _letting_go(plan: Plan, side: Side) -> dict[int, Step]:
    """The steps of the plan's tail of releases and destroys (:func:`_letting_go_from`) that
    run on ``side``, by their index (a bookmark is the source's)."""
    start = _letting_go_from(plan)
    if start is None:
        return {}
    return {index: step for index, step in enumerate(plan.steps[start:], start=start)
            if (isinstance(step, Release | DestroySnapshot) and step.side is side)
            or (isinstance(step, DestroyBookmark) and side is Side.SOURCE)}


def _tagged(holds: Mapping[str, set[str]], tag: str) -> frozenset[str]:
    """The snapshots (by their own names) among ``holds`` that carry ``tag``."""
    return frozenset(zfs.split_snapshot(name)[1] for name, tags in holds.items() if tag in tags)


def _point(value, kind):
    return kind(value.name, value.guid, value.createtxg)
