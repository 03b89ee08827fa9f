"""The destination's view, without ZFS: a replica described from its marks and snapshots."""

from __future__ import annotations

from ovios_shell_retadm.plain_commands import print_replicas_table
from ovios_shell_retadm.replication.incoming import describe
from ovios_shell_retadm.replication.model import ORIGIN_PROPERTY, PROMOTED_PROPERTY
from ovios_shell_retadm.zfs import Snapshot

MARKS = {ORIGIN_PROPERTY: "src:data/vm"}


def snapshot(name: str, creation: int) -> Snapshot:
    return Snapshot("repl/vm", name, guid=creation, createtxg=creation, creation=creation)


HISTORY = [snapshot("monday", 100), snapshot("retadm_0badcafe_20261201T100000.000Z", 200),
           snapshot("retadm_0badcafe_20261202T100000.000Z", 300),
           snapshot("retadm_0badcafe_20261203T100000.000Z", 400)]


def test_a_replica_counts_its_tracking_snapshots_but_the_newest_as_restore_points():
    replica = describe("repl/vm", MARKS, HISTORY)
    assert (replica.origin, replica.newest, replica.newest_created, replica.snapshots, replica.restore_points,
            replica.promoted) == ("src:data/vm", "retadm_0badcafe_20261203T100000.000Z", 400, 4, 2, None)
    assert replica.to_dict(now=460)["age_seconds"] == 60


def test_a_replica_without_snapshots_and_a_promoted_one():
    empty = describe("repl/vm", MARKS, [])
    assert (empty.newest, empty.restore_points, empty.to_dict(now=1)["age_seconds"]) == (None, 0, None)
    promoted = describe("repl/vm", {**MARKS, PROMOTED_PROPERTY: "2026-12-03T10:00:00Z"}, HISTORY[:1])
    assert (promoted.promoted, promoted.restore_points) == ("2026-12-03T10:00:00Z", 0)


def test_the_table_says_when_there_is_none():
    lines: list[str] = []
    print_replicas_table([], lines.append)
    assert lines[0].split() == ["INCOMING", "REPLICA", "SOURCE", "NEWEST", "SNAPSHOT", "AGE", "RESTORE", "POINTS",
                                "PROMOTED"]
    assert lines[-1] == "(no incoming replicas: no partner replicates here)"
    lines.clear()
    print_replicas_table([describe("repl/vm", MARKS, HISTORY)], lines.append)
    assert lines[2].split()[:3] == ["repl/vm", "src:data/vm", "@retadm_0badcafe_20261203T100000.000Z"]
    assert lines[2].split()[-2:] == ["2", "no"]
