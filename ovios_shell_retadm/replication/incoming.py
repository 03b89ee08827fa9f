"""The destination's view: the replicas this node holds for its partners' tasks.

A replica is known by its own origin mark (:data:`~.model.ORIGIN_PROPERTY`, set on it by the
task that feeds it): where it comes from, how recent its newest snapshot is, how many restore
points it keeps, and whether it was promoted.  That is what a failover here would give, and
``retadm status`` shows it on the partner, where no task of its own says anything about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..zfs import Snapshot, ZfsNode
from .model import ORIGIN_PROPERTY, PROMOTED_PROPERTY, TRACKING_NAME
from .origin import marked


@dataclass(frozen=True)
class IncomingReplica:
    dataset: str
    #: ``host:dataset``, the source as the replica's node reaches it
    origin: str
    #: when it was promoted (UTC), None while it is a replica that receives
    promoted: str | None
    #: its newest snapshot (short name) and that snapshot's creation (seconds since the epoch)
    newest: str | None
    newest_created: int | None
    snapshots: int
    #: the tracking snapshots older than the newest one: the points in time kept to go back to
    restore_points: int

    def to_dict(self, now: float) -> dict:
        age = round(now - self.newest_created) if self.newest_created is not None else None
        return {**asdict(self), "age_seconds": age}


def describe(dataset: str, marks: dict[str, str], snapshots: Sequence[Snapshot]) -> IncomingReplica:
    """One replica from its marks and its snapshots (oldest first)."""
    tracking = [s for s in snapshots if TRACKING_NAME.fullmatch(s.name)]
    newest = snapshots[-1] if snapshots else None
    return IncomingReplica(dataset=dataset, origin=marks[ORIGIN_PROPERTY], promoted=marks.get(PROMOTED_PROPERTY),
                           newest=newest.name if newest else None,
                           newest_created=newest.creation if newest else None,
                           snapshots=len(snapshots), restore_points=max(len(tracking) - 1, 0))


def incoming_replicas(node: ZfsNode) -> list[IncomingReplica]:
    """The replicas on ``node`` by name: one ``zfs get`` over the node, then one per replica."""
    return [describe(dataset, marks, node.snapshots(dataset)) for dataset, marks in marked(node).items()]
