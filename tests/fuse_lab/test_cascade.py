"""A cascade on the zfs-fuse lab: src:data/smbvol → dst:repl/smbvol → src:esx/cascade.

The lab has two nodes, so the third stage goes back to src, into another pool: for the
tasks it is a third place like any other (the middle task reaches it over ssh).  Each task
has its own identity: the feeding task never releases or prunes what the cascade holds,
the cascade takes no snapshot on the replica it reads, and resetting either one leaves the
other's chain whole.
"""

from __future__ import annotations

import time

from replication_helpers import checksums, held_by, init, sh, shell, snapshots, status

CASCADE = ("retadm", "init", "repl/smbvol", "--dest", "src", "--remote-pool", "esx", "--remote-name", "cascade",
           "--properties", "no")


def settled(lab, node: str, dataset: str, timeout: float = 120) -> dict:
    """The task's status row once it is not running (the bound only catches a hang)."""
    deadline = time.monotonic() + timeout
    while (row := status(lab, node)[dataset])["status"].startswith("running"):
        assert time.monotonic() < deadline, row
        time.sleep(0.3)
    return row


def inc_ok(lab, node: str, dataset: str) -> None:
    result = shell(lab, node, "retadm", "inc", dataset)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def all_equal(lab) -> None:
    source = checksums(lab, "src", "/data/smbvol")
    assert checksums(lab, "dst", "/repl/smbvol") == source
    assert checksums(lab, "src", "/esx/cascade") == source


def test_a_cascade_replicates_on_and_neither_task_breaks_the_other(fresh_lab):
    lab = fresh_lab
    first = init(lab, "data/smbvol", "smbvol")
    started = shell(lab, "dst", *CASCADE)
    assert started.returncode == 0, started.stderr
    cascade = settled(lab, "dst", "repl/smbvol")
    assert cascade["status"] == "idle", cascade
    assert cascade["cascade"] is True and not first["cascade"]
    assert cascade["hold_tag"] != first["hold_tag"]
    tags = (first["hold_tag"], cascade["hold_tag"], "retadm")
    all_equal(lab)

    for round_ in range(3):
        sh(lab, "src", f"echo {round_} > /data/smbvol/round{round_}.txt")
        inc_ok(lab, "src", "data/smbvol")
        inc_ok(lab, "dst", "repl/smbvol")
        all_equal(lab)

    # the cascade took no snapshot on the replica it reads: everything there came from src
    cascade_prefix = cascade["hold_tag"] + "_"
    on_dst = snapshots(lab, "dst", "repl/smbvol")
    assert not [s for s in on_dst if s.startswith(cascade_prefix)], on_dst
    # each task holds its own common snapshot, with its own tag only
    a_common, b_common = status(lab, "src")["data/smbvol"]["last_snapshot"], status(lab, "dst")["repl/smbvol"][
        "last_snapshot"]
    assert held_by(lab, "src", f"data/smbvol@{a_common}", tags) == {first["hold_tag"]}
    assert first["hold_tag"] in held_by(lab, "dst", f"repl/smbvol@{a_common}", tags)
    assert cascade["hold_tag"] in held_by(lab, "dst", f"repl/smbvol@{b_common}", tags)
    assert held_by(lab, "src", f"esx/cascade@{b_common}", tags) == {cascade["hold_tag"]}
    # what upstream pruned does not pile up downstream: the cascade prunes it there too
    on_c = snapshots(lab, "src", "esx/cascade")
    assert len([s for s in on_c if s.startswith("retadm_")]) <= 3, on_c

    # the cascade goes: the first task's chain is whole, it replicates on
    reset = shell(lab, "dst", "retadm", "reset", "repl/smbvol", "--yes")
    assert reset.returncode == 0, reset.stderr
    sh(lab, "src", "echo after > /data/smbvol/after.txt")
    inc_ok(lab, "src", "data/smbvol")
    assert checksums(lab, "dst", "/repl/smbvol") == checksums(lab, "src", "/data/smbvol")
    assert status(lab, "src")["data/smbvol"]["status"] == "idle"


def test_resetting_the_feeding_task_leaves_the_cascade_whole(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    assert shell(lab, "dst", *CASCADE).returncode == 0
    assert settled(lab, "dst", "repl/smbvol")["status"] == "idle"
    reset = shell(lab, "src", "retadm", "reset", "data/smbvol", "--yes")
    assert reset.returncode == 0, reset.stderr
    # the replica and the cascade's chain on it are as they were: the cascade goes on
    inc_ok(lab, "dst", "repl/smbvol")
    assert checksums(lab, "src", "/esx/cascade") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab, "dst")["repl/smbvol"]["status"] == "idle"
