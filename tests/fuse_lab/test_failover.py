"""Failover and failback on the lab: promote, reverse, switchback (real ZFS, real ssh).

Every write made on either side before the switch must end up where it should: on the
promoted node and then back on the original source; what the old source wrote after
the last replication is shown before it is discarded, and only then discarded.
"""

from __future__ import annotations

import time

from replication_helpers import checksums, init, sh, shell, snapshots, status


def _prop(lab, node: str, name: str, dataset: str) -> str:
    return sh(lab, node, f"zfs get -H -o value {name} {dataset}").stdout.strip()


def _writable(lab, node: str, directory: str) -> bool:
    return sh(lab, node, f"echo probe > {directory}/.probe && rm {directory}/.probe", check=False).returncode == 0


def test_promote_reverse_switchback_keeps_every_write(fresh_lab):
    lab = fresh_lab
    sh(lab, "src", "echo one > /data/smbvol/one.txt")
    init(lab, "data/smbvol", "smbvol")
    assert _prop(lab, "dst", "ovios:retadm.origin", "repl/smbvol") == "192.168.0.149:data/smbvol"
    # written on src after the last replication: lost at failback, and said so first
    sh(lab, "src", "echo late > /data/smbvol/late.txt; zfs snapshot data/smbvol@srconly")

    dry = shell(lab, "dst", "retadm", "promote", "repl/smbvol", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("dry run: promote repl/smbvol (a replica of 192.168.0.149:data/smbvol):\n")
    assert not _writable(lab, "dst", "/repl/smbvol")
    promoted = shell(lab, "dst", "retadm", "promote", "repl/smbvol")
    assert (promoted.returncode, promoted.stderr) == (0, ""), promoted.stderr
    assert _writable(lab, "dst", "/repl/smbvol")
    sh(lab, "dst", "echo failover > /repl/smbvol/failover.txt; zfs snapshot repl/smbvol@dstday")

    row = status(lab)["data/smbvol"]
    assert row["status"] == "broken" and "promoted on its partner" in row["reason"], row
    refused = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert refused.returncode == 1 and refused.stderr.startswith("retadm inc data/smbvol: the relationship is broken")
    assert "failover.txt" not in sh(lab, "src", "ls /data/smbvol").stdout

    dry = shell(lab, "dst", "retadm", "reverse", "repl/smbvol", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "roll the destination back to @retadm_" in dry.stdout and "destroys @srconly" in dry.stdout, dry.stdout
    assert "srconly" in snapshots(lab, "src", "data/smbvol")  # nothing changed yet
    unconfirmed = shell(lab, "dst", "retadm", "reverse", "repl/smbvol")
    assert unconfirmed.returncode == 1 and "not confirmed; nothing was changed" in unconfirmed.stderr
    assert status(lab, "dst") == {}
    back = shell(lab, "dst", "retadm", "reverse", "repl/smbvol", "--yes")
    assert back.returncode == 0, back.stderr
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert "./failover.txt" in checksums(lab, "src", "/data/smbvol")
    assert "srconly" not in snapshots(lab, "src", "data/smbvol") and "dstday" in snapshots(lab, "src", "data/smbvol")
    assert not _writable(lab, "src", "/data/smbvol")  # the old source is the replica now
    reversed_task = status(lab, "dst")["repl/smbvol"]
    # its runs thin the restore points the promoted replica holds (and its old source keeps some)
    assert (reversed_task["status"], reversed_task["retention"]) == ("idle", "hourly=24,daily=7,weekly=4")

    sh(lab, "dst", "echo later > /repl/smbvol/later.txt")
    assert shell(lab, "dst", "retadm", "inc", "repl/smbvol").returncode == 0
    switched = shell(lab, "dst", "retadm", "switchback", "repl/smbvol", "--yes")
    assert switched.returncode == 0, switched.stderr
    assert status(lab, "dst") == {}
    assert not _writable(lab, "dst", "/repl/smbvol") and _writable(lab, "src", "/data/smbvol")
    assert _prop(lab, "src", "ovios:retadm.origin", "data/smbvol") == "-"
    assert _prop(lab, "dst", "ovios:retadm.promoted", "repl/smbvol") == "-"

    sh(lab, "src", "echo home > /data/smbvol/home.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    files = checksums(lab, "src", "/data/smbvol")
    assert files == checksums(lab, "dst", "/repl/smbvol")
    assert {"./one.txt", "./failover.txt", "./later.txt", "./home.txt"} <= set(files)
    assert "./late.txt" not in files  # shown as lost (@srconly) and confirmed
    assert status(lab)["data/smbvol"]["status"] == "idle"


def test_promote_with_the_source_down_works_and_the_source_then_refuses(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "ip link set eth0 down")
    try:
        started = time.monotonic()
        # (shell's timeout only catches a hang: telling the source gives up after seconds)
        promoted = shell(lab, "dst", "retadm", "promote", "repl/smbvol", timeout=120)
        took = time.monotonic() - started
        assert promoted.returncode == 0, promoted.stderr
        assert promoted.stderr.startswith("note: 192.168.0.149 was not told ("), promoted.stderr
    finally:
        sh(lab, "src", "ip link set eth0 up")
    print(f"promote with the source down took {took:.1f}s")
    sh(lab, "dst", "echo mine > /repl/smbvol/mine.txt")
    # the source's task was not told; its next run finds the mark and refuses, replica untouched
    refused = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert refused.returncode == 1 and "was promoted at" in refused.stderr, refused.stderr
    assert "mine.txt" in sh(lab, "dst", "ls /repl/smbvol").stdout
    repair = shell(lab, "src", "retadm", "repair", "data/smbvol", "--yes")
    assert repair.returncode == 1 and "refused: the destination repl/smbvol was promoted at" in repair.stdout, repair
    assert "mine.txt" in sh(lab, "dst", "ls /repl/smbvol").stdout


def test_promote_refuses_what_is_not_a_replica(fresh_lab):
    lab = fresh_lab
    for dataset, message in (("data/smbvol", "data/smbvol is not a replica made by retadm"),
                             ("repl/nothing", "repl/nothing does not exist on this node"),
                             ("repl", "repl is a pool; give the replicated dataset")):
        result = shell(lab, "src" if dataset == "data/smbvol" else "dst", "retadm", "promote", dataset)
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr, result
        assert len(result.stderr.strip().splitlines()) == 1
