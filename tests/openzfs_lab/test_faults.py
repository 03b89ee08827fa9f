"""The fault suite on real OpenZFS 2.x (QEMU lab), where its ZFS behaves differently from
zfs-fuse: interrupted receives leave a resume token, holds can be listed, zvols exist.

The transport faults (host key changed, partner unreachable, two runs at once, a stale
lock) do not depend on the ZFS underneath and run on the zfs-fuse lab
(tests/fuse_lab/test_faults.py); the scenarios below that both labs share are in
tests/fault_scenarios.py.
"""

from __future__ import annotations

import fault_scenarios
from openzfs_helpers import SLOW, kill_transfer_when, last_end, sent_bytes, zvol_digest
from replication_helpers import guids, init, sh, shell, snapshots, status, wait_for


def test_kill_9_mid_incremental_resumes_then_finishes_every_snapshot(fresh_openzfs_lab):
    """A resumed ``-I`` stream finishes only the snapshot it was in: the run must plan again
    and send the rest, so that the user's snapshot and the new tracking one both arrive."""
    lab = fresh_openzfs_lab
    sh(lab, "src", "echo mine > /data/smbvol/mine.txt; zfs snapshot data/smbvol@monday")
    first = init(lab, "data/smbvol", "smbvol")["last_snapshot"]
    sh(lab, "src", "dd if=/dev/urandom of=/data/smbvol/big.bin bs=1M count=32 status=none;"
                   " zfs snapshot data/smbvol@during; echo after > /data/smbvol/after.txt")
    sh(lab, "src", "setsid ovios-shell retadm inc data/smbvol >/dev/null 2>&1 </dev/null &")
    kill_transfer_when(lab, "data/smbvol", 8 << 20)
    row = wait_for(lab, "data/smbvol", ("error",), timeout=SLOW)
    assert "died" in row["reason"], row
    assert snapshots(lab, "dst", "repl/smbvol") == ["monday", first]  # nothing half-made shows
    assert sh(lab, "dst", "zfs get -H -o value receive_resume_token repl/smbvol").stdout.strip() not in ("", "-")

    result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    log = sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert "resume the interrupted transfer" in log
    resumed = sent_bytes(last_end(lab, "data/smbvol"))
    print(f"the resumed incremental sent {resumed} bytes; the change alone is {32 << 20} bytes")
    assert resumed < (32 << 20) * 0.9
    fault_scenarios.assert_replicated(lab, user_snapshots=("monday", "during"),
                                      user_files=("mine.txt", "big.bin", "after.txt"))
    assert guids(lab, "src", "data/smbvol")["during"] == guids(lab, "dst", "repl/smbvol")["during"]
    assert status(lab)["data/smbvol"]["status"] == "idle"


def test_destination_rolled_back_by_hand_then_inc_goes_on_from_the_older_snapshot(fresh_openzfs_lab):
    fault_scenarios.destination_rolled_back(fresh_openzfs_lab, timeout=SLOW)


def test_destination_modified_then_repair_asks_before_rolling_it_back(fresh_openzfs_lab):
    fault_scenarios.destination_modified(fresh_openzfs_lab, timeout=SLOW)


def test_holds_released_by_hand_are_reported_and_put_back(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    fault_scenarios.holds_released(lab, timeout=SLOW)
    # real ZFS lists holds: exactly ours, on the one common snapshot, on each side
    row = status(lab)["data/smbvol"]
    common, tag = row["last_snapshot"], row["hold_tag"]
    for node, dataset in (("src", "data/smbvol"), ("dst", "repl/smbvol")):
        held = sh(lab, node,
                  f"zfs holds -H $(zfs list -H -o name -t snapshot -d 1 {dataset}) | cut -f1,2").stdout.split("\n")
        assert [line for line in held if line] == [f"{dataset}@{common}\t{tag}"], (node, held)


def test_destination_pool_full_under_a_zvol_is_a_clear_error_that_leaves_nothing_behind(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    first = init(lab, "esx/lun01", "lun01", properties="yes")["last_snapshot"]
    # zeros, uncompressed: urandom is slow to make under emulation
    sh(lab, "dst", "zfs create -o compression=off repl/filler;"
                   " dd if=/dev/zero of=/repl/filler/fill bs=1M status=none; true")
    before = sh(lab, "dst", "zfs list -H -t all -o name -r repl").stdout
    sh(lab, "src", "dd if=/dev/urandom of=/dev/zvol/esx/lun01 bs=1M count=40 conv=notrunc,fsync status=none")

    result = shell(lab, "src", "retadm", "inc", "esx/lun01", timeout=SLOW)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retadm inc esx/lun01: ") and "space" in lines[0], lines
    row = status(lab)["esx/lun01"]
    assert row["status"] == "error" and "space" in row["reason"] and row["last_snapshot"] == first, row
    assert sh(lab, "dst", "zfs list -H -t all -o name -r repl").stdout == before

    sh(lab, "dst", "zfs destroy -r repl/filler")
    result = shell(lab, "src", "retadm", "inc", "esx/lun01", timeout=SLOW)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert zvol_digest(lab, "src", "esx/lun01") == zvol_digest(lab, "dst", "repl/lun01")
