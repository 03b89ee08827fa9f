"""Value types of the replication model: what is observed, what a plan does, why it refuses.

Everything here is an immutable value, so the planner is a pure function from an
:class:`Observed` state to a :class:`Plan` or a :class:`Refusal`, and a plan can be
printed (``--dry-run``), compared in tests and carried out by the executor without
either side having to guess what the other meant.

Snapshot and bookmark names are the short names (after ``@`` and ``#``); the task
says which datasets they belong to, and a step says on which :class:`Side` it acts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from ..zfs import set_locally
from .retention import NONE, Retention

#: Every task has an identity of its own, in its tracking snapshots' names
#: (``retadm_<identity>_<timestamp>``) and its holds' tag (``retadm_<identity>``), so that
#: tasks on the same data (a cascade's, several tasks on one node) never release, prune or
#: roll back each other's.  A task set up before identities existed has none and goes on
#: with the tag and prefix below, owning only the names no identified task can have.

#: The hold tag of a task without an identity; holds with other tags belong to someone else.
HOLD_TAG = "retadm"

#: Tracking snapshots are named ``prefix + <timestamp>``; only a task's own are ever destroyed.
TRACKING_PREFIX = "retadm_"

#: A task identity: 8 lowercase hex digits.
IDENTITY = re.compile(r"[0-9a-f]{8}")
_IDENTIFIED_NAME = re.compile(r"retadm_([0-9a-f]{8})_")
#: Any task's tracking snapshot, identified or not (what a cascade relays from upstream).
TRACKING_NAME = re.compile(r"retadm_(?:[0-9a-f]{8}_)?\d{8}T\d{6}\.\d{3}Z")


def own_mark(value_and_source: tuple[str, str]) -> str | None:
    """A mark's value (``zfs get`` value and source) where it was set on this dataset itself;
    None otherwise (unset, inherited, or *received*: a source that was once a replica sends
    its own marks along with ``send -p``, and those describe the sender, not this copy)."""
    value, source = value_and_source
    return value if set_locally(source) and value != "-" else None


def tracking_prefix(identity: str | None) -> str:
    """The tracking snapshot prefix of the task with this identity (None: none)."""
    return f"{TRACKING_PREFIX}{identity}_" if identity else TRACKING_PREFIX


def hold_tag(identity: str | None) -> str:
    """The hold tag of the task with this identity (None: none)."""
    return f"{HOLD_TAG}_{identity}" if identity else HOLD_TAG


def chain_identity(names: Sequence[str]) -> str | None:
    """The identity in the newest of these snapshot names (creation order) that carries one:
    the task whose chain a dataset continues (``retadm reverse`` goes on with it, so that after
    the switch back the original task owns what the reverse runs left)."""
    found = [m.group(1) for m in map(_IDENTIFIED_NAME.match, names) if m]
    return found[-1] if found else None

#: On a replica: the source it is a copy of, ``<host>:<dataset>``, with the host as the
#: replica's node reaches the source (what ``retadm promote`` and failback go back to).
ORIGIN_PROPERTY = "ovios:retadm.origin"
#: On a promoted replica: when it was promoted (UTC).  No run replicates onto it any more.
PROMOTED_PROPERTY = "ovios:retadm.promoted"


@dataclass(frozen=True)
class ObservedSnapshot:
    """A snapshot as the planner sees it (:class:`..zfs.Snapshot` is the whole listing):
    ``guid`` is its identity across both sides, ``createtxg`` its place on its own side."""

    name: str
    guid: int
    createtxg: int


@dataclass(frozen=True)
class ObservedBookmark:
    """A source bookmark as the planner sees it: it keeps a snapshot's guid and createtxg,
    so it can be a send base (``-i`` only) after the snapshot itself is gone."""

    name: str
    guid: int
    createtxg: int


class Side(Enum):
    SOURCE = "source"
    DESTINATION = "destination"


@dataclass(frozen=True)
class Task:
    """One replicated dataset: ``dataset`` here to ``remote_dataset`` on host ``destination``.

    ``cascade``: the dataset is itself a replica (of a task on another node): this task
    sends on the snapshots that arrive, and creates none of its own on it, since a
    snapshot taken on a replica would be divergence to the task that feeds it.
    """

    dataset: str
    destination: str
    remote_dataset: str
    properties: bool
    prefix: str = TRACKING_PREFIX
    #: what the replica's :data:`ORIGIN_PROPERTY` says (None: not known yet, not written)
    origin: str | None = None
    tag: str = HOLD_TAG
    cascade: bool = False
    #: the source is encrypted and travels raw (``send -w``): the replica stays encrypted and
    #: its key never leaves the source; every send of the task, incrementals too, is raw
    raw: bool = False
    #: the stream flags every non-raw send of the task carries (a subset of zfs.STREAM_FLAGS),
    #: decided once at its set-up and never changed: ``-L`` on or off within one chain of
    #: incrementals is refused, or corrupts the replica
    send_flags: tuple[str, ...] = ()
    #: which of its older tracking snapshots the replica keeps as restore points
    retention: Retention = NONE

    def __post_init__(self) -> None:
        # An empty prefix would make every snapshot "ours", and therefore prunable.
        if not self.prefix:
            raise ValueError("the tracking prefix must not be empty")

    @classmethod
    def identified(cls, dataset: str, destination: str, remote_dataset: str, properties: bool,
                   identity: str | None, **rest) -> Task:
        """The task with that identity's prefix and hold tag (None: a task without one)."""
        if identity is not None and not IDENTITY.fullmatch(identity):
            raise ValueError(f"{identity!r} is not a task identity (8 hex digits)")
        return cls(dataset, destination, remote_dataset, properties, prefix=tracking_prefix(identity),
                   tag=hold_tag(identity), **rest)

    def owns(self, name: str) -> bool:
        """Whether a snapshot or bookmark name is one of this task's tracking points.

        A task without an identity owns ``retadm_…`` names, except those of identified tasks."""
        if not name.startswith(self.prefix):
            return False
        return self.prefix != TRACKING_PREFIX or not _IDENTIFIED_NAME.match(name)

    def may_destroy(self, name: str, side: Side) -> bool:
        """Whether the task may ever destroy this snapshot: its own tracking snapshots and, on its
        destination, other tasks' tracking snapshots it carried there (a cascade's upstream task's,
        or the same dataset's other tasks' in fan-out)."""
        relayed = side is Side.DESTINATION and TRACKING_NAME.fullmatch(name) is not None
        return self.owns(name) or relayed


@dataclass(frozen=True)
class PairCapabilities:
    """What the pair of ZFS implementations can do, as far as the planner cares (one node's
    whole set is :class:`..zfs.Capabilities`).

    ``bookmarks``: the source can create bookmarks and send from them.
    """

    bookmarks: bool = False


@dataclass(frozen=True)
class Observed:
    """Everything the planner knows, gathered by the caller before planning.

    Snapshot and bookmark sequences may come in any order: the planner orders them by
    ``createtxg``, which is creation order on each side (the two sides' txgs are
    unrelated and never compared).
    """

    source: tuple[ObservedSnapshot, ...]
    #: None when the remote dataset does not exist.
    destination: tuple[ObservedSnapshot, ...] | None
    source_bookmarks: tuple[ObservedBookmark, ...] = ()
    #: The destination's ``receive_resume_token``: an interrupted resumable receive.
    resume_token: str | None = None
    #: Whether the source can still send from that token: False only where ZFS says the
    #: token's snapshot is gone (then the partial receive may be discarded); None when not
    #: checked.  A check that cannot tell stops the observation (``Pair.observe`` raises
    #: ``ResumeCheckFailed``): an unknown token is never discarded.
    resume_token_valid: bool | None = None
    #: Names of the snapshots that carry the task's hold (its tag), per side.
    source_holds: frozenset[str] = frozenset()
    destination_holds: frozenset[str] = frozenset()
    #: Whether the source was written since its newest snapshot; None when ZFS cannot tell.
    written: bool | None = None
    capabilities: PairCapabilities = PairCapabilities()
    #: The destination's ``readonly`` property; None when not observed.
    destination_readonly: bool | None = None
    #: Whether the destination was written since its newest snapshot; None when ZFS cannot tell.
    destination_written: bool | None = None
    #: The guid the task record names as the last common snapshot (None: nothing recorded).
    recorded_guid: int | None = None
    #: The replica's :data:`ORIGIN_PROPERTY` and :data:`PROMOTED_PROPERTY` (None: unset).
    destination_origin: str | None = None
    destination_promoted: str | None = None

    def holds(self, side: Side) -> frozenset[str]:
        return self.source_holds if side is Side.SOURCE else self.destination_holds


# -- steps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateSnapshot:
    """Take the run's tracking snapshot on the source."""

    name: str

    def describe(self) -> str:
        return f"create snapshot @{self.name} on the source"


@dataclass(frozen=True)
class SendFull:
    """``zfs send [-p] @snapshot | zfs receive``: creates the remote dataset."""

    snapshot: str
    properties: bool
    #: ``send -w``: the encrypted blocks as they are (see :attr:`Task.raw`)
    raw: bool = False

    def describe(self) -> str:
        return f"send @{self.snapshot} in full{_raw(self.raw)}{_with_properties(self.properties)}"


@dataclass(frozen=True)
class SendIncremental:
    """Send everything after ``base`` up to ``target``.

    From a snapshot this is ``send -I``, so the snapshots in between travel too.  ZFS
    refuses ``-I`` from a bookmark, so from a bookmark it is ``send -i`` and the planner
    makes ``target`` the first snapshot after the bookmark, so that nothing is skipped.
    """

    base: str
    base_is_bookmark: bool
    target: str
    properties: bool
    raw: bool = False

    def describe(self) -> str:
        if self.base_is_bookmark:
            return f"send the changes #{self.base} -> @{self.target}{_raw(self.raw)}{_with_properties(self.properties)}"
        return (
            f"send the changes @{self.base} -> @{self.target} and every snapshot in between"
            f"{_raw(self.raw)}{_with_properties(self.properties)}"
        )


@dataclass(frozen=True)
class ResumeSend:
    """``zfs send -t token | zfs receive -s``: finish the interrupted transfer.

    A resumed ``-I`` stream completes only the snapshot it was in; what follows it is
    planned again once it has landed.
    """

    token: str

    def describe(self) -> str:
        return "resume the interrupted transfer from the destination's resume token"


@dataclass(frozen=True)
class AbortResume:
    """``zfs receive -A``: drop a partial receive whose source snapshot is gone."""

    def describe(self) -> str:
        return "discard the stale partial receive on the destination (its source snapshot is gone)"


@dataclass(frozen=True)
class Rollback:
    """``zfs rollback -r`` of the destination to the common snapshot (``retadm repair`` only).

    ``lost`` names the destination's snapshots that go with it; changes written on the
    destination since the common snapshot go too.
    """

    snapshot: str
    lost: tuple[str, ...]

    def describe(self) -> str:
        lost = ", ".join(f"@{name}" for name in self.lost) or "no snapshot"
        return (f"roll the destination back to @{self.snapshot}: discards its changes since then "
                f"and destroys {lost}")


@dataclass(frozen=True)
class RenameDestination:
    """Keep a replica that shares nothing with the source under another name (``repair``)."""

    new_name: str

    def describe(self) -> str:
        return f"keep the old destination dataset as {self.new_name} (nothing is destroyed)"


@dataclass(frozen=True)
class Hold:
    """``zfs hold TAG``: nobody's pruning can destroy the snapshot while it is held."""

    side: Side
    snapshot: str
    tag: str = HOLD_TAG

    def describe(self) -> str:
        return f"hold @{self.snapshot} on the {self.side.value} (tag {self.tag})"


@dataclass(frozen=True)
class Release:
    """Only ever the task's own hold (its tag)."""

    side: Side
    snapshot: str
    tag: str = HOLD_TAG

    def describe(self) -> str:
        return f"release the {self.tag} hold on @{self.snapshot} on the {self.side.value}"


@dataclass(frozen=True)
class DestroySnapshot:
    """Only ever one of the task's own tracking snapshots, never the common one."""

    side: Side
    snapshot: str

    def describe(self) -> str:
        return f"destroy @{self.snapshot} on the {self.side.value}"


@dataclass(frozen=True)
class CreateBookmark:
    """Bookmark a source snapshot, so the chain survives the snapshot's loss."""

    snapshot: str
    bookmark: str

    def describe(self) -> str:
        return f"bookmark @{self.snapshot} as #{self.bookmark} on the source"


@dataclass(frozen=True)
class DestroyBookmark:
    bookmark: str

    def describe(self) -> str:
        return f"destroy bookmark #{self.bookmark} on the source"


@dataclass(frozen=True)
class SetReadonly:
    """``readonly=on`` on the destination: a replica written locally can no longer receive."""

    def describe(self) -> str:
        return "set readonly=on on the destination"


@dataclass(frozen=True)
class MarkOrigin:
    """Write on the replica which source it is a copy of (:data:`ORIGIN_PROPERTY`)."""

    origin: str

    def describe(self) -> str:
        return f"mark the destination as a replica of {self.origin}"


@dataclass(frozen=True)
class RecordCommon:
    """Write the task's last common snapshot into the task record.

    ``guid`` is None when the snapshot is created by the same plan, so its guid cannot
    be known while planning: the executor reads it from the source when it carries
    out this step (the send before it has put the same guid on the destination).  The
    record is informative (``status``); the chain itself is always found again by guid.
    """

    snapshot: str
    guid: int | None

    def describe(self) -> str:
        return f"record @{self.snapshot} as the last common snapshot"


Step = (
    CreateSnapshot
    | ResumeSend
    | AbortResume
    | Rollback
    | RenameDestination
    | SendFull
    | SendIncremental
    | Hold
    | Release
    | DestroySnapshot
    | CreateBookmark
    | DestroyBookmark
    | SetReadonly
    | MarkOrigin
    | RecordCommon
)


def _raw(raw: bool) -> str:
    return ", raw (encrypted, the key stays on the source)" if raw else ""


def _with_properties(properties: bool) -> str:
    return ", with properties" if properties else ""


@dataclass(frozen=True)
class Plan:
    """The steps of one run, in order.

    ``common`` is the last common snapshot (or bookmark) the run starts from, None for
    a full send; ``target`` is the snapshot that is the common one once the plan is done.
    "Nothing to do" is a plan without steps, not a refusal: it is a success.
    """

    steps: tuple[Step, ...]
    common: ObservedSnapshot | ObservedBookmark | None
    target: str

    @property
    def sends(self) -> bool:
        """Whether any data travels: False means the destination was already up to date."""
        return any(isinstance(step, SendFull | SendIncremental | ResumeSend) for step in self.steps)

    @property
    def destructive(self) -> tuple[Rollback | RenameDestination, ...]:
        """The steps that destroy or move what the destination holds: what an administrator
        confirms before ``repair`` or ``reverse`` goes on, and nothing else may do."""
        return tuple(step for step in self.steps if isinstance(step, Rollback | RenameDestination))

    @property
    def needs_replan(self) -> bool:
        """A plan that only prepares the ground (a partial receive, a repair): plan again after it."""
        return any(isinstance(step, ResumeSend | AbortResume | Rollback | RenameDestination)
                   for step in self.steps)

    def describe(self) -> tuple[str, ...]:
        """Human-readable lines, one per step (what ``--dry-run`` prints)."""
        if not self.steps:
            return (f"nothing to do: the destination is up to date at @{self.target}",)
        return tuple(step.describe() for step in self.steps)


# -- conflicts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DestinationMissing:
    """An incremental run, but the remote dataset does not exist (``init`` first)."""

    remote_dataset: str

    def describe(self) -> str:
        return f"the destination {self.remote_dataset} does not exist; initialise the task first"


@dataclass(frozen=True)
class DestinationExists:
    """A full send would need ``receive -F`` over an existing dataset: never done silently."""

    remote_dataset: str

    def describe(self) -> str:
        return f"the destination {self.remote_dataset} already exists"


@dataclass(frozen=True)
class NoCommonSnapshot:
    """No snapshot or bookmark with the same guid on both sides: only a full send can help."""

    def describe(self) -> str:
        return "the source and the destination have no snapshot in common"


@dataclass(frozen=True)
class DestinationDiverged:
    """The destination has snapshots after the common one that the source lacks.

    Receiving would mean rolling them back (``receive -F``), i.e. destroying data on
    the destination, so it is left to an explicit ``repair``.
    """

    common: str
    extra: tuple[str, ...]

    def describe(self) -> str:
        extra = ", ".join(f"@{name}" for name in self.extra)
        return f"the destination has diverged after @{self.common}: {extra}"


@dataclass(frozen=True)
class NameClash:
    """Snapshots the run would create already exist on ``side`` as different snapshots.

    On the destination this happens with re-used names (e.g. ``@monday`` destroyed and
    taken again on the source while the replica kept the old one): the receive would fail.
    """

    side: Side
    names: tuple[str, ...]

    def describe(self) -> str:
        names = ", ".join(f"@{name}" for name in self.names)
        return f"the {self.side.value} already has other snapshots named {names}"


@dataclass(frozen=True)
class NothingToRelay:
    """A cascade sends the snapshots that arrive on its source, and there are none yet."""

    dataset: str

    def describe(self) -> str:
        return (f"{self.dataset} has no snapshot to send on: a replica's task sends the snapshots that arrive "
                "from its own source, and creates none")


@dataclass(frozen=True)
class DestinationPromoted:
    """The replica was promoted (failover): it is a dataset in its own right now, and
    replicating onto it would destroy what was written there since."""

    remote_dataset: str
    when: str

    def describe(self) -> str:
        return (f"the destination {self.remote_dataset} was promoted at {self.when}: the relationship is "
                "broken (to replicate back, run 'retadm reverse' on the promoted node)")


Conflict = (DestinationMissing | DestinationExists | NoCommonSnapshot | DestinationDiverged | NameClash
            | DestinationPromoted | NothingToRelay)


@dataclass(frozen=True)
class Refusal:
    """The planner will not act; nothing was and nothing will be changed."""

    conflict: Conflict

    def describe(self) -> str:
        return self.conflict.describe()
