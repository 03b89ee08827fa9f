"""retadm on real OpenZFS 2.x (QEMU lab): LUNs (zvols), resumable transfers, bookmarks."""

from __future__ import annotations

import re
import time

from children import children_are_named_and_each_gets_a_task
from openzfs_helpers import SLOW, kill_transfer_when, last_end, sent_bytes, when_sent, zvol_digest
from replication_helpers import checksums, init, sh, shell, snapshots, status, wait_for
from restore_points import keeps_the_newest_and_gives_old_data_back


def test_the_guides_walk_through_with_a_lun(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    sh(lab, "src", "zfs set ovios:lun.mapping=iqn.2026-11.com.ovios:esx,lun0 esx/lun01")
    init(lab, "data/smbvol", "smbvol", properties="no")
    init(lab, "esx/lun01", "lun01", properties="yes")
    assert sh(lab, "dst", "zfs get -H -o value type repl/lun01").stdout.strip() == "volume"
    assert sh(lab, "dst", "zfs get -H -o value ovios:lun.mapping repl/lun01").stdout.strip() == \
        "iqn.2026-11.com.ovios:esx,lun0"
    assert zvol_digest(lab, "src", "esx/lun01") == zvol_digest(lab, "dst", "repl/lun01")

    sh(lab, "src", "dd if=/dev/urandom of=/dev/zvol/esx/lun01 bs=64k count=16 seek=37 conv=notrunc,fsync"
                   " status=none; zfs snapshot esx/lun01@tuesday; echo x >> /data/smbvol/readme.txt")
    dry = shell(lab, "src", "retadm", "inc", "esx/lun01", "--dry-run", timeout=SLOW)
    assert re.search(r"^  size estimate: about \d+ bytes$", dry.stdout, re.M), dry.stdout  # written@<common>
    assert shell(lab, "src", "retadm", "inc", timeout=SLOW).returncode == 0
    assert zvol_digest(lab, "src", "esx/lun01") == zvol_digest(lab, "dst", "repl/lun01")
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert "tuesday" in snapshots(lab, "dst", "repl/lun01")
    # bookmarks anchor the chain on the source
    bookmarks = sh(lab, "src", "zfs list -H -o name -t bookmark -r esx").stdout.split()
    assert bookmarks == [f"esx/lun01#{status(lab)['esx/lun01']['last_snapshot']}"]


def test_an_interrupted_full_send_resumes_instead_of_starting_over(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    sh(lab, "src", "zfs create data/big && dd if=/dev/urandom of=/data/big/blob bs=1M count=48 status=none")
    result = shell(lab, "src", "retadm", "init", "data/big", "--dest", "dst", "--remote-pool", "repl",
                   "--remote-name", "big", "--properties", "no", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    kill_transfer_when(lab, "data/big", 16 << 20)
    row = wait_for(lab, "data/big", ("error",), timeout=SLOW)
    assert "died" in row["reason"]
    assert sh(lab, "dst", "zfs get -H -o value receive_resume_token repl/big").stdout.strip() not in ("", "-")

    result = shell(lab, "src", "retadm", "inc", "data/big", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    log = sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert "resume the interrupted transfer" in log
    full_size = 48 << 20
    resumed = sent_bytes(last_end(lab, "data/big"))
    print(f"resumed run sent {resumed} bytes; a full resend is {full_size} bytes and more")
    assert resumed < full_size * 0.8
    assert checksums(lab, "src", "/data/big") == checksums(lab, "dst", "/repl/big")
    assert status(lab)["data/big"]["status"] == "idle"


def test_a_network_cut_mid_full_send_resumes_instead_of_starting_over(fresh_openzfs_lab):
    """The VM-to-VM link (eth1) goes down under a full send: ssh's keep-alives end the run,
    status says error; with the link back, inc resumes from the partner's token."""
    lab = fresh_openzfs_lab
    sh(lab, "src", "zfs create data/big && dd if=/dev/urandom of=/data/big/blob bs=1M count=48 status=none")
    result = shell(lab, "src", "retadm", "init", "data/big", "--dest", "dst", "--remote-pool", "repl",
                   "--remote-name", "big", "--properties", "no", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    try:
        when_sent(lab, "data/big", 16 << 20, "ip link set eth1 down")
        cut = time.monotonic()
        row = wait_for(lab, "data/big", ("error",), timeout=SLOW)
        print(f"the run failed {time.monotonic() - cut:.0f}s after the cut: {row['reason']}")
        assert "connection lost" in row["reason"], row
    finally:
        sh(lab, "src", "ip link set eth1 up")
    result = shell(lab, "src", "retadm", "inc", "data/big", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert "resume the interrupted transfer" in sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    resumed = sent_bytes(last_end(lab, "data/big"))
    print(f"resumed run sent {resumed} bytes; a full resend is {48 << 20} bytes and more")
    assert resumed < (48 << 20) * 0.8
    assert checksums(lab, "src", "/data/big") == checksums(lab, "dst", "/repl/big")
    assert status(lab)["data/big"]["status"] == "idle"


def test_inc_still_works_after_the_last_replicated_snapshot_was_destroyed(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    first = init(lab, "data/smbvol", "smbvol")
    snap = first["last_snapshot"]
    sh(lab, "src", f"zfs release {first['hold_tag']} data/smbvol@{snap}; zfs destroy data/smbvol@{snap};"
                   " echo after > /data/smbvol/after.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    log = sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert f"send the changes #{snap} -> @retadm_" in log
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")


def test_a_stale_resume_token_is_cleared_then_replication_goes_on(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    tag = init(lab, "data/smbvol", "smbvol")["hold_tag"]
    sh(lab, "src", "dd if=/dev/urandom of=/data/smbvol/blob bs=1M count=32 status=none")
    sh(lab, "src", "setsid ovios-shell retadm inc data/smbvol >/dev/null 2>&1 </dev/null &")
    kill_transfer_when(lab, "data/smbvol", 4 << 20)
    token = sh(lab, "dst", "zfs get -H -o value receive_resume_token repl/smbvol").stdout.strip()
    assert token not in ("", "-")
    # the snapshot the interrupted transfer was sending: the newest tracking one on the source
    newest = [s for s in snapshots(lab, "src", "data/smbvol") if s.startswith("retadm_")][-1]
    sh(lab, "src", f"zfs release {tag} data/smbvol@{newest} 2>/dev/null; zfs destroy data/smbvol@{newest}")

    result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    log = sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert "discard the stale partial receive" in log
    assert sh(lab, "dst", "zfs get -H -o value receive_resume_token repl/smbvol").stdout.strip() in ("", "-")
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")


def test_a_run_with_nothing_written_since_the_last_one_needs_no_partner(fresh_openzfs_lab):
    """Cron's steady state: the source is as the last run left it (``written`` is 0 and its
    newest snapshot is the recorded one), so the run ends without ssh: with the link to the
    partner down it still succeeds, takes no snapshot and logs ``unchanged``.  Once data is
    written, the next run needs the partner again."""
    lab = fresh_openzfs_lab
    init(lab, "data/smbvol", "smbvol")
    assert shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW).returncode == 0  # settles any atime
    before = snapshots(lab, "src", "data/smbvol")
    recorded = status(lab)["data/smbvol"]["last_snapshot"]
    try:
        sh(lab, "src", "ip link set eth1 down")
        quiet = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
        assert quiet.returncode == 0, quiet.stderr
        assert snapshots(lab, "src", "data/smbvol") == before
        row = status(lab)["data/smbvol"]
        assert (row["status"], row["last_snapshot"]) == ("idle", recorded), row
        last = sh(lab, "src", "tail -n 1 /var/log/ovios/repl.log").stdout
        assert "unchanged" in last and recorded in last, last

        sh(lab, "src", "echo changed >> /data/smbvol/readme.txt && sync")
        cut = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
        assert cut.returncode != 0 and "data/smbvol" in cut.stderr, (cut.returncode, cut.stderr)
    finally:
        sh(lab, "src", "ip link set eth1 up")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["last_snapshot"] != recorded


def test_the_replica_keeps_restore_points_by_the_policy(fresh_openzfs_lab):
    keeps_the_newest_and_gives_old_data_back(fresh_openzfs_lab, timeout=SLOW)


def test_children_are_named_and_each_gets_a_task(fresh_openzfs_lab):
    children_are_named_and_each_gets_a_task(fresh_openzfs_lab, timeout=SLOW)
