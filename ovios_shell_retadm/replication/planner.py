"""The replication planner: observed snapshot state in, a plan or a refusal out.

A run takes a tracking snapshot, sends everything between the last common snapshot
and it (``-I``, so the user's snapshots travel too), then *settles*: the new common
snapshot is held on both sides (and bookmarked on the source), recorded, and only then
are the older holds released and the task's older tracking snapshots destroyed, so
the chain is protected at every point where a run can stop.

The common snapshot is found by guid, never by name.  Nothing is ever overwritten on
the destination: divergence and name clashes are refusals, for ``repair`` to handle.
Pure functions only: the clock (the new snapshot's name) and ZFS state are arguments.

Every task touches only its own: holds with its tag, tracking snapshots and bookmarks with
its prefix.  The one exception is on its destination: the other tasks' tracking snapshots
that its sends carried there and that its source no longer has (their own task pruned them
there) are pruned by it, since nobody else would.  They come from upstream (a cascade: a
task whose source is itself a replica, which takes no snapshot and sends on the newest
snapshot that arrived) or from the dataset's other tasks (fan-out: several destinations).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from .model import (
    AbortResume,
    CreateBookmark,
    CreateSnapshot,
    DestinationDiverged,
    DestinationExists,
    DestinationMissing,
    DestinationPromoted,
    DestroyBookmark,
    DestroySnapshot,
    Hold,
    MarkOrigin,
    NameClash,
    NoCommonSnapshot,
    NothingToRelay,
    Observed,
    ObservedBookmark,
    ObservedSnapshot,
    Plan,
    RecordCommon,
    Refusal,
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
)


def find_common(
    source: Sequence[ObservedSnapshot],
    destination: Sequence[ObservedSnapshot],
    source_bookmarks: Sequence[ObservedBookmark] = (),
) -> ObservedSnapshot | ObservedBookmark | None:
    """The newest source snapshot or bookmark whose guid is also on the destination.

    A bookmark newer than every shared snapshot wins (the snapshot it marks was
    destroyed after it was sent); between a snapshot and its own bookmark the snapshot
    wins, because only a snapshot can be the base of ``send -I``.
    """
    on_destination = {snapshot.guid for snapshot in destination}
    points: list[ObservedSnapshot | ObservedBookmark] = [*source, *source_bookmarks]
    shared = [point for point in points if point.guid in on_destination]
    return max(shared, key=lambda point: (point.createtxg, isinstance(point, ObservedSnapshot)), default=None)


def plan_resume(observed: Observed) -> Plan | None:
    """What to do first about an interrupted resumable receive, if there is one.

    A token whose source snapshot still exists is resumed, so the bytes already sent
    are not sent again; a stale one (``resume_token_valid`` False) is discarded, so a
    normal run can follow.  Either way the caller observes and plans again afterwards:
    what the destination looks like then is ZFS's to say, not this function's.
    """
    if observed.resume_token is None or observed.destination_promoted is not None:
        return None
    if observed.resume_token_valid is False:
        return Plan((AbortResume(),), None, "")
    return Plan((ResumeSend(observed.resume_token),), None, "")


def plan_reset(observed: Observed, task: Task) -> Plan:
    """Take the task's own marks off both sides: holds, tracking snapshots, bookmarks.

    Only what the task made goes; the replicated data and every user snapshot stay
    (a user snapshot that carries our hold is released, never destroyed).  A side
    not observed (``destination`` None: missing or unreachable) is left alone.
    """
    steps: list[Step] = []
    sides = {Side.SOURCE: observed.source, Side.DESTINATION: observed.destination or ()}
    for side, snapshots in sides.items():
        names = _names(snapshots)
        steps += [Release(side, name, task.tag) for name in names if name in observed.holds(side)]
        steps += [DestroySnapshot(side, name) for name in names if task.owns(name)]
    steps += [DestroyBookmark(name) for name in _names(observed.source_bookmarks) if task.owns(name)]
    return Plan(tuple(steps), None, "")


def plan_repair(observed: Observed, task: Task, keep_as: str) -> Plan | Refusal | None:
    """What ``retadm repair`` does before a normal run can go on; None when nothing is broken.

    - the destination has snapshots after the common one, or was (or may have been)
      written since it: roll it back to the common snapshot, naming what is lost;
    - nothing in common any more: keep the old replica under ``keep_as`` (renamed,
      never destroyed), so that a full send can start afresh;
    - a missing replica needs no preparation: the next run sends it in full.
    Missing holds and stale partial receives are mended by the normal run itself.
    A promoted replica is never rolled back or renamed: that is failback's business.
    """
    if observed.destination is None:
        return None
    if observed.destination_promoted is not None:
        return Refusal(DestinationPromoted(task.remote_dataset, observed.destination_promoted))
    common = find_common(observed.source, observed.destination, observed.source_bookmarks)
    if common is None:
        return Plan((RenameDestination(keep_as),), None, "")
    extra = _after(observed.destination, common.guid)
    if not extra and observed.destination_written is False:
        return None
    return _roll_back(observed, task, common, extra)


def plan_full(observed: Observed, task: Task, new_snapshot: str | None) -> Plan | Refusal:
    """Initialise a task: the remote dataset is created from the source's whole history.

    The oldest existing snapshot goes in full, then ``-I`` up to the new tracking
    snapshot, so every snapshot the user already has travels too.  A cascade takes no
    snapshot (``new_snapshot`` None): it sends up to the newest one there is.
    """
    if observed.destination is not None:
        return Refusal(DestinationExists(task.remote_dataset))
    source = _names(observed.source)
    if task.cascade:
        if not source:
            return Refusal(NothingToRelay(task.dataset))
        target, create = source[-1], []
        source = source[:-1]
    else:
        target = _require_tracking_name(task, new_snapshot)
        if _taken_on_source(observed, target):
            return Refusal(NameClash(Side.SOURCE, (target,)))
        create = [CreateSnapshot(target)]
    landed = (*source, target)
    steps = [
        *create,
        *_full_sends(source, target, task.properties, task.raw),
        *_settle(observed, task, target, None, {Side.SOURCE: landed, Side.DESTINATION: landed}, None),
    ]
    return Plan(tuple(steps), None, target)


def plan_incremental(observed: Observed, task: Task, new_snapshot: str | None) -> Plan | Refusal:
    """One cron run: send what the source has after the last common snapshot.

    If the source's newest snapshot is already the common one (a previous run's data
    landed but its bookkeeping did not, or nothing happened since), and the source was
    not written since, nothing is sent: the plan only repairs the bookkeeping, and is
    empty when there is nothing to repair.

    If the destination's only snapshots after the common one are the task's own tracking
    snapshots that the source lost (see :func:`_only_lost_tracking`), the plan rolls the
    destination back to the common snapshot and asks to be planned again.

    A cascade (``new_snapshot`` None) sends up to the newest snapshot its source has.
    """
    if not task.cascade:
        _require_tracking_name(task, new_snapshot)
    if observed.destination is None:
        return Refusal(DestinationMissing(task.remote_dataset))
    if observed.destination_promoted is not None:
        return Refusal(DestinationPromoted(task.remote_dataset, observed.destination_promoted))
    common = find_common(observed.source, observed.destination, observed.source_bookmarks)
    if common is None:
        return Refusal(NoCommonSnapshot())
    extra = _after(observed.destination, common.guid)
    if extra and _only_lost_tracking(observed, task, extra):
        return _roll_back(observed, task, common, extra)
    if extra:
        return Refusal(DestinationDiverged(common.name, extra))
    protect: list[Step] = [SetReadonly()] if observed.destination_readonly is False else []
    source = _names(observed.source)
    destination = _names(observed.destination)
    if _up_to_date(observed, task, common):
        landed = {Side.SOURCE: source, Side.DESTINATION: destination}
        steps = [*protect, *_settle(observed, task, common.name, common.guid, landed, common.name)]
        return Plan(tuple(steps), common, common.name)
    later = _names(s for s in observed.source if s.createtxg > common.createtxg)
    if task.cascade:
        target, create, travelling = later[-1], [], later
        clash = _clash(observed, None, travelling)
    else:
        target = _require_tracking_name(task, new_snapshot)
        create = [CreateSnapshot(target)]
        travelling = (*later, target)
        clash = _clash(observed, target, travelling)
    if clash is not None:
        return Refusal(clash)
    landed = {Side.SOURCE: (*source, *([] if task.cascade else [target])),
              Side.DESTINATION: (*destination, *travelling)}
    steps = [
        *protect,
        *create,
        *_incremental_sends(observed.source, common, target, task.properties, task.raw),
        *_settle(observed, task, target, None, landed, common.name),
    ]
    return Plan(tuple(steps), common, target)


def unchanged_since_recorded(source: Sequence[ObservedSnapshot], written: bool | None, task: Task,
                             recorded_guid: int | None, source_holds: Collection[str]) -> bool:
    """Whether a cron run may end before it looks at the destination: the source's newest
    snapshot is the one the task's last run recorded as replicated (by guid), it still carries
    the task's hold (``source_holds``: the names that do), it is the task's own tracking
    snapshot (a cascade: any snapshot, since what is written on a replica is not its to send),
    and nothing was written since.  A hold gone missing is a run's to put back, on both sides.

    Written unknown (zfs-fuse) counts as written: the run goes on and plans as usual.  The
    destination is taken as recorded: the next run that sends, and ``doctor``, look at it.
    """
    newest = max(source, key=lambda snapshot: snapshot.createtxg, default=None)
    if newest is None or recorded_guid is None or newest.guid != recorded_guid or newest.name not in source_holds:
        return False
    if task.cascade:
        return True
    return task.owns(newest.name) and written is False


# -- deciding -----------------------------------------------------------------------------


def _require_tracking_name(task: Task, new_snapshot: str | None) -> str:
    # A tracking snapshot without the prefix would count as the user's and never be pruned.
    if new_snapshot is None or not task.owns(new_snapshot):
        raise ValueError(f"tracking snapshot {new_snapshot!r} lacks the prefix {task.prefix!r}")
    return new_snapshot


def _up_to_date(observed: Observed, task: Task, common: ObservedSnapshot | ObservedBookmark) -> bool:
    """Whether the destination already has everything and the chain's anchor is ours.

    ``written`` unknown counts as written.  A user snapshot as the newest common one
    still gets a tracking snapshot on top, so the hold that anchors the chain never
    blocks the user's own pruning.  A cascade is up to date once the newest snapshot its
    source has is the common one (what is written there is its own source's to send).
    """
    newest = max(observed.source, key=lambda snapshot: snapshot.createtxg, default=None)
    if task.cascade:
        return common == newest
    return common == newest and task.owns(common.name) and observed.written is False


def _after(destination: Sequence[ObservedSnapshot], common_guid: int) -> tuple[str, ...]:
    """Destination snapshots newer than the common one: the source has none of them,
    since the common one is the newest snapshot the two sides share."""
    common = next(snapshot for snapshot in destination if snapshot.guid == common_guid)
    return _names(snapshot for snapshot in destination if snapshot.createtxg > common.createtxg)


def _only_lost_tracking(observed: Observed, task: Task, extra: Sequence[str]) -> bool:
    """Whether the destination's snapshots after the common one are only the task's own
    tracking snapshots, whose twins were destroyed on the source (by hand: ours are held),
    on a replica nobody wrote to since.

    That is no divergence: those snapshots hold nothing but what the source sent, so the
    replica can go back to the common snapshot and receive from there.  A replica written
    since (``destination_written``), or possibly written (unknown, and not read-only),
    is divergence all the same: that is for ``repair``.
    """
    if not all(task.owns(name) for name in extra):
        return False
    if observed.destination_written is None:
        return observed.destination_readonly is not False
    return not observed.destination_written


def _roll_back(observed: Observed, task: Task, common: ObservedSnapshot | ObservedBookmark,
               extra: Sequence[str]) -> Plan:
    """Our holds off the destination's snapshots after the common one, then a rollback to
    it (which destroys them); the caller plans again from what is left."""
    anchor = next(s.name for s in observed.destination or () if s.guid == common.guid)
    ours = [Release(Side.DESTINATION, name, task.tag) for name in extra if name in observed.destination_holds]
    return Plan((*ours, Rollback(anchor, tuple(extra))), common, anchor)


def _taken_on_source(observed: Observed, name: str) -> bool:
    """The new snapshot and its bookmark must both be new names."""
    return name in _names(observed.source) or name in _names(observed.source_bookmarks)


def _clash(observed: Observed, new_snapshot: str | None, travelling: Sequence[str]) -> NameClash | None:
    if new_snapshot is not None and _taken_on_source(observed, new_snapshot):
        return NameClash(Side.SOURCE, (new_snapshot,))
    on_destination = set(_names(observed.destination or ()))
    clashing = tuple(name for name in travelling if name in on_destination)
    return NameClash(Side.DESTINATION, clashing) if clashing else None


# -- sending ------------------------------------------------------------------------------


def _full_sends(source: Sequence[str], new_snapshot: str, properties: bool, raw: bool) -> list[Step]:
    """Oldest snapshot in full, then ``-I`` to the new one; readonly as soon as the
    dataset exists, so nothing writes to it before the incremental receive."""
    if not source:
        return [SendFull(new_snapshot, properties, raw), SetReadonly()]
    oldest = source[0]
    return [
        SendFull(oldest, properties, raw),
        SetReadonly(),
        SendIncremental(oldest, False, new_snapshot, properties, raw),
    ]


def _incremental_sends(
    source: Sequence[ObservedSnapshot],
    common: ObservedSnapshot | ObservedBookmark,
    new_snapshot: str,
    properties: bool,
    raw: bool,
) -> list[Step]:
    """From a snapshot one ``-I`` send; from a bookmark ``-i`` to the first snapshot after
    it, then ``-I`` from there, so intermediate snapshots travel either way.  A raw task's
    incrementals are raw too (ZFS refuses a non-raw one onto a raw replica)."""
    if isinstance(common, ObservedSnapshot):
        return [SendIncremental(common.name, False, new_snapshot, properties, raw)]
    later = _names(s for s in source if s.createtxg > common.createtxg)
    first = later[0] if later else new_snapshot
    steps: list[Step] = [SendIncremental(common.name, True, first, properties, raw)]
    if first != new_snapshot:
        steps.append(SendIncremental(first, False, new_snapshot, properties, raw))
    return steps


# -- settling -----------------------------------------------------------------------------


def _settle(
    observed: Observed,
    task: Task,
    target: str,
    guid: int | None,
    landed: Mapping[Side, Sequence[str]],
    common: str | None,
) -> list[Step]:
    """Make ``target`` the protected common snapshot, then let go of the older ones.

    ``landed`` names each side's snapshots once the sends are done, oldest first.  The
    target is the newest on both sides then, so "older than the common one" is simply
    "not the target".  The new hold and bookmark go on before any old one comes off.
    ``common`` is where the run started (None: a full send).
    """
    return [
        *_hold(observed, task, target),
        *_bookmark(observed, task, target),
        *_mark_origin(observed, task),
        *_record(observed, target, guid),
        *(step for side in Side for step in _release(task, side, landed[side], observed.holds(side), target)),
        *(step for side in Side for step in _prune(task, side, landed[side], target, common)),
        *_prune_relayed(observed, task, landed[Side.DESTINATION], target),
        *_prune_bookmarks(observed, task, target),
    ]


def _hold(observed: Observed, task: Task, target: str) -> list[Step]:
    return [Hold(side, target, task.tag) for side in Side if target not in observed.holds(side)]


def _bookmark(observed: Observed, task: Task, target: str) -> list[Step]:
    """A cascade's source is a replica: its bookmarks would be named after another task's
    snapshots, which this task could not tell from anybody's; it keeps none."""
    if task.cascade or not observed.capabilities.bookmarks or target in _names(observed.source_bookmarks):
        return []
    return [CreateBookmark(target, target)]


def _mark_origin(observed: Observed, task: Task) -> list[Step]:
    if task.origin is None or task.origin == observed.destination_origin:
        return []
    return [MarkOrigin(task.origin)]


def _record(observed: Observed, target: str, guid: int | None) -> list[Step]:
    if guid is not None and guid == observed.recorded_guid:
        return []
    return [RecordCommon(target, guid)]


def _release(task: Task, side: Side, snapshots: Sequence[str], held: frozenset[str], target: str) -> list[Step]:
    """Our holds on every other snapshot, the user's included: they are no longer needed."""
    return [Release(side, name, task.tag) for name in snapshots if name in held and name != target]


def _prune(task: Task, side: Side, snapshots: Sequence[str], target: str, common: str | None) -> list[Step]:
    """The task's own older tracking snapshots, except the restore points its retention keeps;
    never the user's, never the target.

    On the destination the policy looks at every tracking snapshot of the task.  On the source
    it looks only at those older than the run's starting point ``common`` (None: a full send):
    a source keeps no restore points of its own, but one that was a replica (a promoted one the
    task now sends back from) keeps those it held, thinned by the same policy.
    """
    ours = [name for name in snapshots if task.owns(name)]
    if side is Side.SOURCE:
        start = snapshots.index(common) if common in snapshots else 0
        earlier = [name for name in ours if snapshots.index(name) < start]
        kept = task.retention.keep([*earlier, target])
    else:
        kept = task.retention.keep(ours)
    return [DestroySnapshot(side, name) for name in ours if name != target and name not in kept]


def _prune_relayed(observed: Observed, task: Task, destination: Sequence[str], target: str) -> list[Step]:
    """Other tasks' tracking snapshots on the destination that arrived with this task's sends
    and that the source no longer has (their task pruned them there), older than the new common
    one.  Nobody else would ever destroy them: a cascade relays its upstream task's, and the
    tasks of one dataset (fan-out) carry each other's to their destinations, since an ``-I``
    send takes every snapshot in between.  Never a user's snapshot, never the common one."""
    on_source = {s.name for s in observed.source}
    older = destination[:destination.index(target)] if target in destination else ()
    return [DestroySnapshot(Side.DESTINATION, name) for name in older
            if name not in on_source and not task.owns(name) and task.may_destroy(name, Side.DESTINATION)]


def _prune_bookmarks(observed: Observed, task: Task, target: str) -> list[Step]:
    return [
        DestroyBookmark(name)
        for name in _names(observed.source_bookmarks)
        if task.owns(name) and name != target
    ]


def _names(points: Iterable[ObservedSnapshot | ObservedBookmark]) -> tuple[str, ...]:
    """Names in creation order."""
    return tuple(point.name for point in sorted(points, key=lambda point: point.createtxg))
