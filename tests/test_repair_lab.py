"""retadm repair on the lab: what it will do first, confirmation, then replication goes on."""

from __future__ import annotations

import pytest

from replication_helpers import checksums, init, sh, shell, snapshots, status

pytestmark = pytest.mark.lab


def _diverge(lab):
    """The replica written and snapshotted on the destination (readonly lifted by hand)."""
    sh(lab, "dst", "zfs set readonly=off repl/smbvol; echo local > /repl/smbvol/local.txt;"
                   " zfs snapshot repl/smbvol@dstonly")


def test_repair_rolls_a_diverged_destination_back_after_showing_what_is_lost(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    _diverge(lab)
    sh(lab, "src", "echo newer > /data/smbvol/newer.txt")
    refused = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert refused.returncode == 1 and "has diverged after @retadm_" in refused.stderr and "@dstonly" in refused.stderr
    assert status(lab)["data/smbvol"]["status"] == "error"

    dry = shell(lab, "src", "retadm", "repair", "data/smbvol", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "roll the destination back to @retadm_" in dry.stdout and "destroys @dstonly" in dry.stdout
    assert "dstonly" in snapshots(lab, "dst", "repl/smbvol")
    unconfirmed = shell(lab, "src", "retadm", "repair", "data/smbvol")
    assert unconfirmed.returncode == 1 and "not confirmed; nothing was changed" in unconfirmed.stderr
    assert "dstonly" in snapshots(lab, "dst", "repl/smbvol")

    done = shell(lab, "src", "retadm", "repair", "data/smbvol", "--yes")
    assert done.returncode == 0, done.stderr
    assert "dstonly" not in snapshots(lab, "dst", "repl/smbvol")
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["status"] == "idle"
    assert shell(lab, "src", "retadm", "inc", "data/smbvol").returncode == 0


def test_repair_with_nothing_in_common_keeps_the_old_replica_and_sends_in_full(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    # every snapshot the two sides shared is gone from the source (zfs-fuse has no bookmarks)
    for snap in snapshots(lab, "src", "data/smbvol"):
        sh(lab, "src", f"zfs release retadm data/smbvol@{snap} 2>/dev/null; zfs destroy data/smbvol@{snap}")
    refused = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert "no snapshot in common" in refused.stderr

    done = shell(lab, "src", "retadm", "repair", "data/smbvol", "--yes")
    assert done.returncode == 0, done.stderr
    assert "keep the old destination dataset as repl/smbvol-old-" in done.stdout
    kept = [n for n in sh(lab, "dst", "zfs list -H -o name -r repl").stdout.split() if "smbvol-old-" in n]
    assert len(kept) == 1 and checksums(lab, "dst", "/" + kept[0]) == checksums(lab, "src", "/data/smbvol")
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["status"] == "idle"
