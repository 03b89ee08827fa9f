"""Where a replica is mounted, on the zfs-fuse lab.

With properties replicated (``send -p``), a source's local ``mountpoint`` travels with the
stream.  A replica must never be mounted over the partner's own directories: it stays under
its pool (``/repl/...``) until it is promoted; promote moves it to the source's mountpoint
when that directory is free, and says in one line how to do it when it is not.

(zfs-fuse refuses to mount over a non-empty directory: before the fix the full send ended in
``error``; OpenZFS mounts over it and hides the files, see tests/openzfs_lab/test_mountpoint.py.)
"""

from __future__ import annotations

import pytest

from replication_helpers import checksums, init, prop, sh, shell, status, writable

#: a directory of each node's own: the lab nodes share the machine's /srv (a bind mount), their
#: /run is a tmpfs each
SHARE = "/run/srv/share"


def source_at_share(lab, *, dst_files: bool) -> None:
    """data/smbvol mounted at SHARE on src; dst's own SHARE holds a file (or is absent)."""
    sh(lab, "dst", f"mountpoint -q {SHARE} || rm -rf {SHARE}")
    if dst_files:
        sh(lab, "dst", f"mkdir -p {SHARE} && echo mine > {SHARE}/dst-own.txt")
    sh(lab, "src", f"mountpoint -q {SHARE} || rm -rf {SHARE};"
                   f" zfs set mountpoint={SHARE} data/smbvol && echo one > {SHARE}/one.txt")


@pytest.fixture
def share_lab(fresh_lab):
    yield fresh_lab
    # the next reset destroys the datasets; the directories are the nodes' own
    for node in ("src", "dst"):
        sh(fresh_lab, node, f"zfs unmount {SHARE} 2>/dev/null; mountpoint -q {SHARE} || rm -rf {SHARE}",
           check=False)


def test_a_replica_stays_under_its_pool_and_promote_does_not_cover_the_partners_files(share_lab):
    lab = share_lab
    source_at_share(lab, dst_files=True)
    init(lab, "data/smbvol", "smbvol", properties="yes")  # reaches idle
    assert sh(lab, "dst", f"ls -A {SHARE}").stdout.split() == ["dst-own.txt"]
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"
    assert checksums(lab, "src", SHARE) == checksums(lab, "dst", "/repl/smbvol")
    # the source's mountpoint stays on the replica, for promote (what it received)
    assert sh(lab, "dst", "zfs get -H -o received mountpoint repl/smbvol").stdout.strip() == SHARE

    sh(lab, "src", f"echo two > {SHARE}/two.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"
    assert checksums(lab, "src", SHARE) == checksums(lab, "dst", "/repl/smbvol")
    assert sh(lab, "dst", f"ls -A {SHARE}").stdout.split() == ["dst-own.txt"]

    dry = shell(lab, "dst", "retadm", "promote", "repl/smbvol", "--dry-run")
    assert f"mount repl/smbvol at the source's mountpoint {SHARE} if that directory is empty" in dry.stdout, dry
    promoted = shell(lab, "dst", "retadm", "promote", "repl/smbvol")
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stderr == (f"note: repl/smbvol stays mounted at /repl/smbvol: {SHARE} is not empty; "
                               f"once it is, 'zfs inherit -S mountpoint repl/smbvol' mounts it there\n")
    assert sh(lab, "dst", f"ls -A {SHARE}").stdout.split() == ["dst-own.txt"]
    assert writable(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["status"] == "broken"


def test_promote_mounts_at_the_free_mountpoint_and_switchback_puts_each_side_back(share_lab):
    lab = share_lab
    source_at_share(lab, dst_files=False)
    init(lab, "data/smbvol", "smbvol", properties="yes")
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"

    promoted = shell(lab, "dst", "retadm", "promote", "repl/smbvol")
    assert (promoted.returncode, promoted.stderr) == (0, ""), promoted.stderr
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == SHARE
    assert writable(lab, "dst", SHARE)
    sh(lab, "dst", f"echo failover > {SHARE}/failover.txt; zfs snapshot repl/smbvol@dstday")

    back = shell(lab, "dst", "retadm", "reverse", "repl/smbvol", "--yes")
    assert back.returncode == 0, back.stderr
    assert checksums(lab, "src", SHARE) == checksums(lab, "dst", SHARE)
    assert not writable(lab, "src", SHARE)  # the old source, a replica now, where it always was

    switched = shell(lab, "dst", "retadm", "switchback", "repl/smbvol", "--yes")
    assert switched.returncode == 0, switched.stderr
    # production back at its real mountpoint; the replica under its pool again, read-only
    assert prop(lab, "src", "mountpoint", "data/smbvol") == SHARE and writable(lab, "src", SHARE)
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"
    assert not writable(lab, "dst", "/repl/smbvol")
    assert sh(lab, "dst", f"ls -A {SHARE} 2>/dev/null || true").stdout.split() == []

    sh(lab, "src", f"echo home > {SHARE}/home.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    files = checksums(lab, "src", SHARE)
    assert files == checksums(lab, "dst", "/repl/smbvol")
    assert {"./one.txt", "./failover.txt", "./home.txt"} <= set(files)
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"


def test_a_replica_an_older_retadm_mounted_at_the_sources_path_is_reported_then_moved_by_its_next_run(share_lab):
    lab = share_lab
    source_at_share(lab, dst_files=False)
    init(lab, "data/smbvol", "smbvol", properties="yes")
    sh(lab, "dst", "zfs inherit -S mountpoint repl/smbvol")  # where receives used to mount it
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == SHARE

    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol")
    line = next(line for line in doctor.stdout.splitlines() if line.startswith("  WARN  mountpoint: "))
    assert f"mounted at the source's mountpoint {SHARE}, outside its pool" in line, doctor.stdout

    sh(lab, "src", f"echo two > {SHARE}/two.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"
    assert checksums(lab, "src", SHARE) == checksums(lab, "dst", "/repl/smbvol")
    assert sh(lab, "dst", f"ls -A {SHARE} 2>/dev/null || true").stdout.split() == []
    assert f"mount repl/smbvol under its pool, not at the source's mountpoint {SHARE}" in \
        sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol")
    assert "  OK    mountpoint: /repl/smbvol (under its pool)" in doctor.stdout, doctor.stdout
