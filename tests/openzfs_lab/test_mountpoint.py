"""Where a replica is mounted, on real OpenZFS 2.x (QEMU lab).

OpenZFS mounts over a non-empty directory: before the fix, a replica received with the
source's ``mountpoint=/srv/share`` covered the partner's own /srv/share and hid its files.
A replica now stays under its pool until promoted; promote mounts it at /srv/share only when
that directory is empty (see also tests/fuse_lab/test_mountpoint.py on zfs-fuse).
"""

from __future__ import annotations

from openzfs_helpers import SLOW
from replication_helpers import checksums, init, sh, shell, status

SHARE = "/srv/share"  # each VM's own


def _prop(lab, node: str, name: str, dataset: str) -> str:
    return sh(lab, node, f"zfs get -H -o value {name} {dataset}").stdout.strip()


def test_a_replica_never_covers_the_partners_files_and_promote_mounts_it_once_free(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    sh(lab, "dst", f"mountpoint -q {SHARE} || rm -rf {SHARE}; mkdir -p {SHARE} && echo mine > {SHARE}/dst-own.txt")
    sh(lab, "src", f"zfs set mountpoint={SHARE} data/smbvol && echo one > {SHARE}/one.txt")
    try:
        init(lab, "data/smbvol", "smbvol", properties="yes")  # reaches idle
        init(lab, "esx/lun01", "lun01", properties="yes")  # a zvol: no mountpoint to keep away
        assert sh(lab, "dst", f"ls -A {SHARE}").stdout.split() == ["dst-own.txt"]
        assert _prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"
        assert checksums(lab, "src", SHARE) == checksums(lab, "dst", "/repl/smbvol")

        sh(lab, "src", f"echo two > {SHARE}/two.txt")
        result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=SLOW)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        assert _prop(lab, "dst", "mountpoint", "repl/smbvol") == "/repl/smbvol"
        assert checksums(lab, "src", SHARE) == checksums(lab, "dst", "/repl/smbvol")
        assert sh(lab, "dst", f"ls -A {SHARE}").stdout.split() == ["dst-own.txt"]

        promoted = shell(lab, "dst", "retadm", "promote", "repl/smbvol", timeout=SLOW)
        assert promoted.returncode == 0, promoted.stderr
        assert promoted.stderr == (f"note: repl/smbvol stays mounted at /repl/smbvol: {SHARE} is not empty; "
                                   f"once it is, 'zfs inherit -S mountpoint repl/smbvol' mounts it there\n")
        assert sh(lab, "dst", f"ls -A {SHARE}").stdout.split() == ["dst-own.txt"]
        assert status(lab, "src")["data/smbvol"]["status"] == "broken"

        # the administrator moves their files away; promote again mounts it at the source's path
        sh(lab, "dst", f"rm {SHARE}/dst-own.txt")
        again = shell(lab, "dst", "retadm", "promote", "repl/smbvol", timeout=SLOW)
        assert (again.returncode, again.stderr) == (0, ""), again.stderr
        assert _prop(lab, "dst", "mountpoint", "repl/smbvol") == SHARE
        assert checksums(lab, "src", SHARE) == checksums(lab, "dst", SHARE)
        sh(lab, "dst", f"echo failover > {SHARE}/failover.txt")  # writable there
    finally:
        sh(lab, "dst", f"zfs unmount {SHARE} 2>/dev/null; mountpoint -q {SHARE} || rm -rf {SHARE}", check=False)
