"""``restore`` on the OpenZFS lab, against the real services in the VMs: LIO (targetcli),
Samba and the NFS server on ``dst``; ``src`` is the client (iscsiadm, smbclient, mount.nfs)."""

from __future__ import annotations

import re
import time

from replication_helpers import checksums, init, node_python, sh, shell

SLOW = 300
IQN = "iqn.2026-11.com.ovios:esx"  # (LIO refuses a naming authority without a dot)
DST = "192.168.0.111"
#: what the lab's dst serves, as the kernel and LIO's saved file show it
LIO_STATE = ("cd /sys/kernel/config/target 2>/dev/null && find . -path ./core/alua -prune -o -print "
             "| grep -v '/statistics\\|/alua\\|/pr/\\|/wwn/\\|/fabric_statistics' | sort | sha256sum; "
             "cat /etc/rtslib-fb-target/saveconfig.json 2>/dev/null | sha256sum")
SERVICES_STATE = (LIO_STATE + "; cat /etc/samba/smb.conf /etc/samba/ovios-shares.conf /etc/exports.d/* "
                  "/etc/passwd 2>/dev/null | sha256sum; pdbedit -L -w 2>/dev/null | sha256sum")


def restore(lab, *args: str):
    started = time.monotonic()
    result = shell(lab, "dst", "restore", *args, timeout=SLOW)
    print(f"restore {' '.join(args)}: {time.monotonic() - started:.1f} s, exit {result.returncode}\n"
          f"{result.stdout}{result.stderr}")
    return result


def test_restore_luns_from_the_replicas_property_serves_the_lun_to_the_other_node(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    sh(lab, "src", f"zfs set ovios:lun.mapping={IQN},lun0 esx/lun01")
    init(lab, "esx/lun01", "lun01", properties="yes")
    before = sh(lab, "dst", LIO_STATE).stdout

    dry = restore(lab, "luns", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0].startswith("no synced configuration in /etc/ovios/synced")
    assert "note: repl/lun01 is read-only (a replica not promoted yet): clients can read it, writes fail until " \
           "it is promoted (retadm promote repl/lun01)" in lines
    assert [line for line in lines if line.startswith("would ")] == [
        "would create read-only LIO block backstore repl-lun01 on /dev/zvol/repl/lun01",
        f"would create iSCSI target {IQN} (TPG 1, portal 0.0.0.0:3260), open to any initiator (no ACLs "
        "configured: cache_dynamic_acls=1 demo_mode_write_protect=0 generate_node_acls=1)",
        f"would map repl/lun01 as LUN 0 of {IQN}",
        "would save the LIO configuration (survives a reboot)"]
    assert sh(lab, "dst", LIO_STATE).stdout == before

    done = restore(lab, "luns")
    assert done.returncode == 0, done.stderr
    assert f"map repl/lun01 as LUN 0 of {IQN}" in done.stdout.splitlines()
    assert "repl-lun01" in sh(lab, "dst", "cat /etc/rtslib-fb-target/saveconfig.json").stdout
    applied = sh(lab, "dst", LIO_STATE).stdout

    # the other node logs in and reads the LUN's blocks: the zvol's, byte for byte
    device = f"/dev/disk/by-path/ip-{DST}:3260-iscsi-{IQN}-lun-0"
    read = sh(lab, "src", f"systemctl start iscsid && iscsiadm -m discovery -t sendtargets -p {DST} && "
                          f"iscsiadm -m node -T {IQN} -p {DST} --login >/dev/null && udevadm settle && "
                          f"for i in $(seq 100); do [ -b {device} ] && break; sleep 0.2; done; "
                          f"sha256sum {device} /dev/zvol/esx/lun01", check=False)
    assert read.returncode == 0, read.stderr
    digests = [line.split()[0] for line in read.stdout.splitlines() if re.match(r"[0-9a-f]{64}  /dev/", line)]
    assert f"{DST}:3260,1 {IQN}" in read.stdout
    assert len(digests) == 2 and digests[0] == digests[1], read.stdout

    again = restore(lab, "luns")
    assert again.returncode == 0 and "nothing to do: already applied" in again.stdout.splitlines(), again.stdout
    assert sh(lab, "dst", LIO_STATE).stdout == applied

    # a second zvol mapped to the same target with the same LUN id: refused, one clear line, nothing changed
    sh(lab, "dst", f"zfs create -V 8M repl/lun02 && zfs set ovios:lun.mapping={IQN},lun0 repl/lun02")
    clash = restore(lab, "luns")
    assert clash.returncode == 1
    assert clash.stderr.splitlines()[0] == (
        f"restore luns: refused: LUN 0 of {IQN} is already used by repl/lun01 (backstore block/repl-lun01): "
        "not mapping repl/lun02 there (from ovios:lun.mapping of repl/lun02); give it another LUN id")
    assert "Traceback" not in clash.stderr
    assert sh(lab, "dst", LIO_STATE).stdout == applied


#: src's configuration as autosync brings it: src's own dataset names (restore finds their
#: replicas here by their origin mark)
SYNCED = """
from dataclasses import replace
from ovios_shell_retadm.config import files, model
c = model.with_user(model.Configuration(), model.User("alice", 2001, model.nt_hash("Secret-1")))
c = model.with_share(c, model.Share("smbvol", "data/smbvol", valid_users=("alice",)))
c = model.with_export(c, model.Export("data/smbvol", "192.168.0.0/24", "ro,sync,no_subtree_check"))
assert files.store_synced(replace(c, node="src", generation=1, updated="2026-11-26T09:00:00Z"))
"""


def test_restore_all_from_a_synced_configuration_serves_the_share_and_the_export(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    init(lab, "data/smbvol", "smbvol")
    node_python(lab, "dst", SYNCED)
    sh(lab, "dst", "zfs mount -a")  # the guide's "service zfs mount-all"
    before = sh(lab, "dst", SERVICES_STATE).stdout

    dry = restore(lab, "all", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == ("using the configuration synced from src (generation 1, "
                                          "2026-11-26T09:00:00Z)")
    assert [line for line in dry.stdout.splitlines() if line.startswith("would ")] == [
        "would add Unix user alice (uid 2001)",
        "would add Samba account alice (NT hash from the configuration)",
        "would add SMB share smbvol (/repl/smbvol)",
        "would include /etc/samba/ovios-shares.conf from /etc/samba/smb.conf",
        "would export /repl/smbvol to 192.168.0.0/24(ro,sync,no_subtree_check)",
        "would exportfs -ra (the kernel's export table)"]
    assert sh(lab, "dst", SERVICES_STATE).stdout == before

    done = restore(lab, "all")
    assert done.returncode == 0, done.stderr
    assert "note: smbd is not running: start it to serve the shares (service smb start)" in done.stdout
    started = time.monotonic()
    sh(lab, "dst", "systemctl start smbd nfs-server")  # the guide's next step: start the services
    print(f"smbd and nfs-server started in {time.monotonic() - started:.1f} s")

    want = checksums(lab, "src", "/data/smbvol")["./hello.txt"]
    got = sh(lab, "src", f"smbclient //{DST}/smbvol -U 'alice%Secret-1' -c 'get hello.txt /tmp/hello.txt' "
                         "&& sha256sum /tmp/hello.txt", check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stdout.split()[-2] == want
    wrong = sh(lab, "src", f"smbclient //{DST}/smbvol -U 'alice%wrong' -c ls", check=False)
    assert wrong.returncode != 0 and "NT_STATUS_LOGON_FAILURE" in wrong.stdout + wrong.stderr

    exports = sh(lab, "src", f"showmount -e {DST}", check=False)
    assert "/repl/smbvol 192.168.0.0/24" in exports.stdout, exports.stdout + exports.stderr
    sh(lab, "src", f"mkdir -p /mnt/nfs && mount -t nfs -o ro,vers=4.2 {DST}:/repl/smbvol /mnt/nfs")
    try:
        assert checksums(lab, "src", "/mnt/nfs") == checksums(lab, "src", "/data/smbvol")
    finally:
        sh(lab, "src", "umount /mnt/nfs", check=False)

    applied = sh(lab, "dst", SERVICES_STATE).stdout
    again = restore(lab, "all")
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "nothing to do: already applied", again.stdout
    assert sh(lab, "dst", SERVICES_STATE).stdout == applied
