"""Fan-out on the zfs-fuse lab: src:data/smbvol replicated to two destinations at once.

The lab has two nodes, so the second destination is a second remote dataset on dst: the
tasks are src:data/smbvol → dst:repl/smbvol and src:data/smbvol → dst:repl/fanout
(``--remote-name fanout``).  For the tasks it is a destination like any other: a task is
told from the dataset's other tasks by host and remote dataset, and the commands that act
on one task choose it with ``--dest`` (here ``--dest dst:repl/fanout``, since both go to
the same host).  Each task has its own identity, so its own tracking snapshots and holds.
"""

from __future__ import annotations

import json
import time

from replication_helpers import checksums, guids, held_by, init, pause_inc, sh, shell, snapshots

SECOND = ("retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl", "--remote-name", "fanout",
          "--properties", "no", "--retention", "none")
REPLICAS = ("repl/smbvol", "repl/fanout")


def rows(lab) -> dict[str, dict]:
    """``retadm status --json``'s rows of data/smbvol, by remote dataset."""
    result = shell(lab, "src", "retadm", "status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["remote_dataset"]: row for row in json.loads(result.stdout) if row["dataset"] == "data/smbvol"}


def settled(lab, remote: str, timeout: float = 120) -> dict:
    """The task's status row once it is not running (the bound only catches a hang)."""
    deadline = time.monotonic() + timeout
    while (row := rows(lab)[remote])["status"].startswith("running"):
        assert time.monotonic() < deadline, row
        time.sleep(0.3)
    return row


def all_equal(lab, replicas: tuple[str, ...] = REPLICAS) -> None:
    source = checksums(lab, "src", "/data/smbvol")
    for replica in replicas:
        assert checksums(lab, "dst", f"/{replica}") == source, replica


def each_task_keeps_to_its_own(lab, tags: dict[str, str]) -> None:
    """Each task's common snapshot is its own, held by its tag alone on both sides; on each
    destination the other task's tracking snapshots do not pile up: at most one (its current
    one, which this task's last send carried, or its previous one, which the source dropped
    after that send and this task's next run prunes)."""
    on_source = snapshots(lab, "src", "data/smbvol")
    assert len([s for s in on_source if s.startswith("retadm_")]) == 2, on_source  # one per task
    for remote, row in rows(lab).items():
        own = tags[remote]
        assert row["status"] == "idle" and row["last_snapshot"].startswith(own + "_"), row
        assert held_by(lab, "src", f"data/smbvol@{row['last_snapshot']}", tuple(tags.values())) == {own}
        assert held_by(lab, "dst", f"{remote}@{row['last_snapshot']}", tuple(tags.values())) == {own}
        on_replica = snapshots(lab, "dst", remote)
        others = [s for s in on_replica if s.startswith("retadm_") and not s.startswith(own + "_")]
        assert len(others) <= 1, (remote, on_replica, on_source)
        assert len([s for s in on_replica if s.startswith(own + "_")]) == 1, on_replica


def test_one_dataset_replicated_to_two_destinations(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    started = shell(lab, "src", *SECOND)
    assert started.returncode == 0, started.stderr
    assert settled(lab, "repl/fanout")["status"] == "idle"
    tags = {remote: row["hold_tag"] for remote, row in rows(lab).items()}
    assert set(tags) == set(REPLICAS) and len(set(tags.values())) == 2
    all_equal(lab)
    # the same destination and remote dataset twice is refused, in one line
    again = shell(lab, "src", *SECOND)
    assert again.returncode != 0 and again.stderr.count("\n") == 1, again.stderr
    assert "already" in again.stderr and "repl/fanout" in again.stderr, again.stderr

    for round_ in range(4):
        sh(lab, "src", f"echo {round_} > /data/smbvol/round{round_}.txt")
        if round_ == 1:
            sh(lab, "src", "zfs snapshot data/smbvol@user1")
        result = shell(lab, "src", "retadm", "inc", "data/smbvol")
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        all_equal(lab)
        each_task_keeps_to_its_own(lab, tags)
    for replica in REPLICAS:
        assert "user1" in snapshots(lab, "dst", replica)

    # the two tasks run at the same time, each under its own lock: a run of the first task is
    # caught mid-run (stopped right after its start event, its lock held); the second task
    # replicates meanwhile, and a second run of the first is refused as busy (75)
    sh(lab, "src", "echo together > /data/smbvol/together.txt")
    pause_inc(lab, "--dest", "dst:repl/fanout")
    paused = rows(lab)["repl/fanout"]
    assert paused["status"] == "running_inc", paused
    other = shell(lab, "src", "retadm", "inc", "data/smbvol", "--dest", "dst:repl/smbvol")
    assert (other.returncode, other.stderr) == (0, ""), other.stderr
    assert checksums(lab, "dst", "/repl/smbvol") == checksums(lab, "src", "/data/smbvol")
    busy = shell(lab, "src", "retadm", "inc", "data/smbvol", "--dest", "dst:repl/fanout")
    assert busy.returncode == 75, busy.stderr
    sh(lab, "src", f"kill -CONT {paused['pid']}")
    assert settled(lab, "repl/fanout")["status"] == "idle"
    assert sh(lab, "src", "cat /run/inc.out").stdout == ""
    all_equal(lab)
    # zfs-fuse lists no holds: a run finds its own by holding its tag on every held snapshot and
    # releasing it where it was new (ZfsNode.holds).  When the stop fell between those two calls,
    # the other task's previous snapshot was busy for its prune: that run kept it (and said so),
    # and only that one.  Its next run prunes it on the source, and the next run of the task whose
    # send carried it to its replica prunes it there
    kept = sh(lab, "src", "grep ' kept @' /var/log/ovios/repl.log", check=False).stdout.splitlines()
    assert all(f"kept @{tags['repl/smbvol']}_" in line and "on the source" in line for line in kept), kept
    assert len(kept) <= 1, kept
    for replica in ("repl/smbvol", "repl/fanout"):
        result = shell(lab, "src", "retadm", "inc", "data/smbvol", "--dest", f"dst:{replica}")
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
    each_task_keeps_to_its_own(lab, tags)

    # one task's failure is its own line and a non-zero exit; the other task replicates
    sh(lab, "dst", "zfs snapshot repl/fanout@diverged")
    sh(lab, "src", "echo failing > /data/smbvol/failing.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert result.returncode == 1
    assert result.stderr.startswith("retadm inc data/smbvol -> dst:repl/fanout: ") and \
        result.stderr.count("\n") == 1, result.stderr
    all_equal(lab, ("repl/smbvol",))
    assert rows(lab)["repl/fanout"]["status"] == "error" and rows(lab)["repl/smbvol"]["status"] == "idle"
    sh(lab, "dst", "zfs destroy repl/fanout@diverged")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    all_equal(lab)

    # a command on one task needs --dest when the dataset has several
    for verb in (("reset", "--yes"), ("repair", "--yes"), ("watch",), ("doctor",)):
        ambiguous = shell(lab, "src", "retadm", verb[0], "data/smbvol", *verb[1:])
        assert ambiguous.returncode == 2, (verb, ambiguous.stdout, ambiguous.stderr)
        assert ambiguous.stderr == (f"retadm {verb[0]}: data/smbvol has 2 replication tasks (dst:repl/fanout, "
                                    "dst:repl/smbvol); choose one with --dest HOST or --dest HOST:REMOTE_DATASET\n")

    # resetting one task leaves the other whole: its next run is incremental
    kept = rows(lab)["repl/smbvol"]["last_snapshot"]
    before = guids(lab, "dst", "repl/smbvol")
    reset = shell(lab, "src", "retadm", "reset", "data/smbvol", "--dest", "dst:repl/fanout", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert set(rows(lab)) == {"repl/smbvol"}
    assert not [s for s in snapshots(lab, "src", "data/smbvol") if s.startswith(tags["repl/fanout"] + "_")]
    assert held_by(lab, "src", f"data/smbvol@{kept}", tuple(tags.values())) == {tags["repl/smbvol"]}
    sh(lab, "src", "echo after > /data/smbvol/after.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    all_equal(lab, ("repl/smbvol",))
    after = guids(lab, "dst", "repl/smbvol")
    assert after["user1"] == before["user1"]  # the replica received incrementally on top of what it had
    ends = [line for line in sh(lab, "src", "cat /var/log/ovios/repl.log").stdout.splitlines()
            if " data/smbvol " in line and (" end " in line or " start " in line)]
    assert " inc end " in ends[-1] and " sends=1 " in ends[-1], ends[-2:]
    assert rows(lab)["repl/smbvol"]["status"] == "idle"
