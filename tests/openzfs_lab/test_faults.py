"""The fault suite on real OpenZFS 2.x (QEMU lab), where its ZFS behaves differently from
zfs-fuse: interrupted receives leave a resume token, holds can be listed, zvols exist.

The transport faults (host key changed, partner unreachable, two runs at once, a stale
lock) do not depend on the ZFS underneath and run on the zfs-fuse lab
(tests/fuse_lab/test_faults.py); the scenarios below that both labs share are in
tests/fault_scenarios.py.
"""

from __future__ import annotations

import re

import fault_scenarios
from openzfs_helpers import SLOW, kill_transfer_when, last_end, sent_bytes, zfs_fault, zvol_digest
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


# -- the boundaries of a run's bookkeeping: what rides on the receive's connection, and after ------


def _one_change(lab) -> tuple[str, str]:
    """Replicated, then 4 MiB more on the source; returns (the common snapshot, the log's length)."""
    sh(lab, "src", "echo mine > /data/smbvol/mine.txt; zfs snapshot data/smbvol@monday")
    common = init(lab, "data/smbvol", "smbvol")["last_snapshot"]
    sh(lab, "src", "dd if=/dev/urandom of=/data/smbvol/change.bin bs=1M count=4 status=none")
    return common, sh(lab, "src", "wc -l < /var/log/ovios/repl.log").stdout.strip()


def _sends_since(lab, lines: str) -> list[str]:
    log = sh(lab, "src", f"tail -n +{int(lines) + 1} /var/log/ovios/repl.log").stdout.splitlines()
    return [line for line in log if re.search(r"""what=['"](send|resume) """, line)]


def _next_run_settles_without_sending(lab, lines: str, landed: str) -> None:
    """After a run that failed once its data had landed: the next run succeeds without sending
    again (one send since ``lines``, the failed run's), and ``landed`` is the common snapshot
    of a good replication."""
    after = sh(lab, "src", "wc -l < /var/log/ovios/repl.log").stdout.strip()
    result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert _sends_since(lab, after) == [], "the landed snapshot was sent again"
    assert len(_sends_since(lab, lines)) == 1
    assert fault_scenarios.assert_replicated(lab, user_snapshots=("monday",),
                                             user_files=("mine.txt", "change.bin")) == landed


def test_connection_gone_right_after_the_receive_then_nothing_is_sent_twice(fresh_openzfs_lab):
    """The partner's side of the run dies between its receive and its bookkeeping (the new
    snapshot's hold, which rides on the receive's connection): the data is there, unheld.
    The run fails; the next one sends nothing again and only settles."""
    lab = fresh_openzfs_lab
    old, lines = _one_change(lab)
    with zfs_fault(lab, "dst", "hold", "kill -KILL $PPID"):  # the partner's script, mid-way
        failed = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    landed = snapshots(lab, "dst", "repl/smbvol")[-1]
    assert landed != old and landed in snapshots(lab, "src", "data/smbvol")  # the data landed
    assert sh(lab, "dst", f"zfs get -H -o value userrefs repl/smbvol@{landed}").stdout.strip() == "0"
    assert status(lab)["data/smbvol"]["status"] == "error"

    _next_run_settles_without_sending(lab, lines, landed)


def test_a_hold_refused_with_the_receive_is_put_on_in_its_place(fresh_openzfs_lab):
    """A rider that fails on the partner is carried out again in its place in the plan: the
    run succeeds, and the log shows the hold made on its own, not with the receive."""
    lab = fresh_openzfs_lab
    _, lines = _one_change(lab)
    with zfs_fault(lab, "dst", "hold", "echo 'cannot hold: pool I/O is currently suspended' >&2"):
        result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    log = sh(lab, "src", f"tail -n +{int(lines) + 1} /var/log/ovios/repl.log").stdout
    holds = [line for line in log.splitlines() if "what='hold @" in line and "destination" in line]
    assert holds and all("(with the receive)" not in line for line in holds), holds
    fault_scenarios.assert_replicated(lab, user_snapshots=("monday",), user_files=("mine.txt", "change.bin"))


def test_killed_in_the_partners_letting_go_then_nothing_is_sent_twice(fresh_openzfs_lab):
    """The partner's script dies after it held the new snapshot, as it lets go of the old one
    (which rides on the receive's connection too): the old one is still there and held on
    both sides.  The run fails; the next one sends nothing again, and lets go of it."""
    lab = fresh_openzfs_lab
    old, lines = _one_change(lab)
    with zfs_fault(lab, "dst", "release", "kill -KILL $PPID"):
        failed = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    landed = snapshots(lab, "dst", "repl/smbvol")[-1]
    assert landed != old
    for name in (old, landed):
        assert sh(lab, "dst", f"zfs get -H -o value userrefs repl/smbvol@{name}").stdout.strip() == "1", name

    _next_run_settles_without_sending(lab, lines, landed)


def test_killed_between_the_partners_bookkeeping_and_the_sources_then_nothing_is_sent_twice(fresh_openzfs_lab):
    """The run dies after the partner's bookkeeping (on the receive's connection: the new
    snapshot held, the old one let go of) and before this node's: both sides have the new
    snapshot, only the partner's is held, and only the source still has the old one.  The
    next run settles without sending."""
    lab = fresh_openzfs_lab
    old, lines = _one_change(lab)
    with zfs_fault(lab, "src", "hold", "kill -KILL $PPID"):  # the run itself
        killed = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
    assert killed.returncode != 0
    landed = snapshots(lab, "dst", "repl/smbvol")[-1]
    assert sh(lab, "dst", f"zfs get -H -o value userrefs repl/smbvol@{landed}").stdout.strip() == "1"
    assert sh(lab, "src", f"zfs get -H -o value userrefs data/smbvol@{landed}").stdout.strip() == "0"
    assert old not in snapshots(lab, "dst", "repl/smbvol")
    assert sh(lab, "src", f"zfs get -H -o value userrefs data/smbvol@{old}").stdout.strip() == "1"

    _next_run_settles_without_sending(lab, lines, landed)
