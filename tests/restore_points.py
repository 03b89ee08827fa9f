"""The restore points scenario, run on both labs (zfs-fuse and OpenZFS): what a replica keeps
by its task's retention policy, and that a restore point gives the old data back."""

from __future__ import annotations

from replication_helpers import init, sh, shell, snapshots, status

DATASET, REPLICA = "data/smbvol", "repl/smbvol"


def tracking(lab, node: str, dataset: str) -> list[str]:
    return [name for name in snapshots(lab, node, dataset) if name.startswith("retadm_")]


CLONE = f"{REPLICA}-restored"


def read_from_restore_point(lab, snapshot: str, path: str) -> str:
    """A file as it was at one of the replica's snapshots, through a clone of it (left in place)."""
    sh(lab, "dst", f"zfs clone -o mountpoint=/mnt/restored {REPLICA}@{snapshot} {CLONE}")
    return sh(lab, "dst", f"cat /mnt/restored/{path}").stdout


def destroy_clone(lab) -> None:
    sh(lab, "dst", f"for i in $(seq 20); do zfs destroy {CLONE} && exit 0; sleep 0.5; done; exit 1")


def inc(lab, timeout: float) -> str:
    result = shell(lab, "src", "retadm", "inc", DATASET, timeout=timeout)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return status(lab)[DATASET]["last_snapshot"]


def keeps_the_newest_and_gives_old_data_back(lab, timeout: float = 120) -> None:
    """``last=3``: after five runs the replica holds the three newest tracking snapshots (the
    newest is the common one), the source only the common one, the user's snapshot stays; the
    oldest kept one holds the data of its run.  A smaller policy prunes at the next run that sends."""
    row = init(lab, DATASET, "smbvol", retention="last=3")
    assert row["retention"] == "last=3"
    sh(lab, "src", f"zfs snapshot {DATASET}@monday")
    taken = [row["last_snapshot"]]
    for version in range(4):
        sh(lab, "src", f"echo version {version} > /data/smbvol/version.txt")
        taken.append(inc(lab, timeout))
    assert tracking(lab, "dst", REPLICA) == taken[-3:]
    assert tracking(lab, "src", DATASET) == taken[-1:]
    assert "monday" in snapshots(lab, "dst", REPLICA)
    assert read_from_restore_point(lab, taken[-3], "version.txt") == "version 1\n"
    assert sh(lab, "dst", "cat /repl/smbvol/version.txt").stdout == "version 3\n"

    shown = shell(lab, "src", "retadm", "status").stdout
    assert "data/smbvol: restore points kept on dst: last=3" in shown, shown
    doctor = shell(lab, "src", "retadm", "doctor", DATASET, timeout=timeout).stdout
    assert "OK    restore points: 2 kept (last=3), the oldest from " in doctor, doctor

    # a smaller policy prunes at the next run, except a restore point with a clone: kept, said
    # (at its next run that sends: a run with nothing written since ends before it looks at dst)
    edited = shell(lab, "src", "retadm", "edit", DATASET, "--retention", "none")
    assert edited.stdout == "data/smbvol -> dst:repl/smbvol: retention last=3 -> none\n", edited.stderr
    sh(lab, "src", "echo version 4 > /data/smbvol/version.txt")
    newest = inc(lab, timeout)
    assert tracking(lab, "dst", REPLICA) == [taken[-3], newest]
    assert tracking(lab, "src", DATASET) == [newest]
    log = sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert f"kept @{taken[-3]} on the destination: it has a clone" in log, log
    destroy_clone(lab)
    sh(lab, "src", "echo version 5 > /data/smbvol/version.txt")
    newest = inc(lab, timeout)
    assert tracking(lab, "dst", REPLICA) == [newest] == tracking(lab, "src", DATASET)
    doctor = shell(lab, "src", "retadm", "doctor", DATASET, timeout=timeout).stdout
    assert "WARN  restore points: none kept: the replica holds one point in time" in doctor, doctor
