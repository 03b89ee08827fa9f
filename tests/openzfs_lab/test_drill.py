"""The failover drill on the OpenZFS lab, with real services, end to end.

``src`` serves an SMB share from ``data/smbvol``, an iSCSI LUN from ``esx/lun01`` and an NFS
export, set up with the usual tools (targetcli, smb.conf, smbpasswd, /etc/exports), nothing of
this project's; both datasets are replicated to ``dst``, autosync on.  What ``src`` serves is
captured into its configuration and arrives on ``dst`` after one shell command; a change to
the services (a second share) arrives the same way.  ``src`` loses its power; ``dst`` promotes both,
``restore all`` applies what autosync brought, the services start; ``src`` comes back and, as
a client, reads the share (smbclient, the user's password) and the LUN (iSCSI) from ``dst``:
what ``src`` had at the last replication.  Then failback: writes on ``dst`` (a file in the
share, blocks through iSCSI), ``retadm reverse`` and ``retadm switchback``, and every write
is where it should be on ``src``, whose next ``retadm inc`` works.

The guide (section 8) wants the replicas named as the sources for autosync: the synced
configuration names ``data/smbvol`` and ``esx/lun01``.  The lab's ``dst`` has only the pool
``repl``, so the drill gives ``dst`` the pools ``data`` and ``esx`` (file vdevs inside the VM)
and replicates to the same names.

Run it on a lab of its own: ``OVIOS_OPENZFS_LAB_NAME=drill pytest -m openzfs tests/openzfs_lab/test_drill.py``.
"""

from __future__ import annotations

import json
import time

from ovios_shell_retadm.config.model import nt_hash

from openzfs_helpers import SLOW, zvol_digest
from replication_helpers import checksums, sh, shell

IQN = "iqn.2026-11.lab.ovios:esx"  # LIO (rtslib) wants a dotted naming authority
DST = "192.168.0.111"
SRC = "192.168.0.149"
PASSWORD = "Drill-Secret-1"
DATASETS = ("data/smbvol", "esx/lun01")
LUN_DEVICE = f"/dev/disk/by-path/ip-{DST}:3260-iscsi-{IQN}-lun-0"

#: src's services, set up by hand with the usual tools (a saved LIO configuration, as
#: targetcli's own shell saves on exit)
SERVE_ON_SRC = f"""set -e
useradd -u 2001 -M -N -s /usr/sbin/nologin alice
printf '%s\\n%s\\n' {PASSWORD} {PASSWORD} | smbpasswd -s -a alice >/dev/null
printf '[smbvol]\\n  path = /data/smbvol\\n  valid users = alice\\n  read only = no\\n' >> /etc/samba/smb.conf
systemctl start smbd
targetcli /backstores/block create name=esx-lun01 dev=/dev/zvol/esx/lun01 >/dev/null
targetcli /iscsi create {IQN} >/dev/null
targetcli /iscsi/{IQN}/tpg1/luns create /backstores/block/esx-lun01 lun=0 >/dev/null
targetcli /iscsi/{IQN}/tpg1 set attribute generate_node_acls=1 demo_mode_write_protect=0 \
    cache_dynamic_acls=1 authentication=0 >/dev/null
targetcli saveconfig >/dev/null
echo '/data/smbvol 192.168.0.0/24(rw,sync,no_subtree_check)' >> /etc/exports
"""
#: what autosync must carry of it (and nothing of the rest: printers, homes)
CAPTURED = {
    "iscsi": {"targets": [{"iqn": IQN, "acls": [], "luns": [{"id": 0, "volume": "esx/lun01"}]}]},
    "smb": {"shares": [{"name": "smbvol", "dataset": "data/smbvol", "read_only": False, "valid_users": ["alice"]}]},
    "nfs": {"exports": [{"dataset": "data/smbvol", "clients": "192.168.0.0/24",
                         "options": "rw,sync,no_subtree_check"}]},
    "users": [{"name": "alice", "uid": 2001, "nt_hash": nt_hash(PASSWORD)}],
}


def run(lab, node: str, *args: str):
    """One ovios-shell command in a node; it must succeed."""
    started = time.monotonic()
    result = shell(lab, node, *args, timeout=SLOW)
    print(f"{node}$ ovios-shell {' '.join(args)}: {time.monotonic() - started:.1f} s, exit {result.returncode}\n"
          f"{result.stdout}{result.stderr}", flush=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def smb_files(lab, client: str, server: str) -> dict[str, str]:
    """Every file of the share ``smbvol`` on ``server``, fetched by ``client`` as alice."""
    got = sh(lab, client, f"rm -rf /tmp/smb && mkdir /tmp/smb && cd /tmp/smb && "
                          f"smbclient //{server}/smbvol -U 'alice%{PASSWORD}' -c 'prompt off; recurse on; mget *'",
             check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    return checksums(lab, client, "/tmp/smb")


def synced_copy(lab, generation: int | None = None) -> dict:
    """dst's copy of src's configuration, once it exists (and is ``generation``, if given)."""
    deadline = time.monotonic() + 120
    while True:
        synced = lab.exec("dst", ["cat", "/etc/ovios/synced/src.json"])
        if synced.returncode == 0 and (generation is None or json.loads(synced.stdout)["generation"] >= generation):
            return json.loads(synced.stdout)
        assert time.monotonic() < deadline, f"src's configuration did not reach dst: {synced.stdout}"
        time.sleep(2)


def task_states(lab, node: str) -> dict[str, str]:
    rows = json.loads(run(lab, node, "retadm", "status", "--json").stdout)
    return {row["dataset"]: row["status"] for row in rows}


def test_failover_drill_and_failback(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    drill_started = time.monotonic()
    # dst: pools named as src's (the guide's naming for autosync); src: the LUN's data, its mapping
    sh(lab, "dst", "set -e; for p in data esx; do f=/var/tmp/drill-$p.img; rm -f $f; truncate -s 256M $f; "
                   "zpool create -f -o cachefile=none $p $f; done")
    sh(lab, "src", "dd if=/dev/urandom of=/dev/zvol/esx/lun01 bs=64k count=16 seek=40 conv=notrunc,fsync "
                   "status=none")
    sh(lab, "src", SERVE_ON_SRC)
    assert smb_files(lab, "dst", SRC) == checksums(lab, "src", "/data/smbvol")  # src serves its share

    run(lab, "src", "options", "autosync.enable", "on")
    for dataset in DATASETS:
        pool, name = dataset.split("/")
        run(lab, "src", "retadm", "init", dataset, "--dest", "dst", "--remote-pool", pool, "--remote-name", name,
            "--properties", "yes")
    sh(lab, "src", "for i in $(seq 300); do ovios-shell retadm status --json | grep -q running_full || break; "
                   "sleep 1; done")
    assert task_states(lab, "src") == dict.fromkeys(DATASETS, "idle")

    # what src serves reached dst (the post-command hook of each command above): captured, pushed
    synced = synced_copy(lab)
    assert {part: synced[part] for part in CAPTURED} == CAPTURED, synced
    assert synced == json.loads(sh(lab, "src", "cat /etc/ovios/config.json").stdout)
    assert "config not captured" not in run(lab, "src", "retadm", "status").stdout
    # a change made with the usual tools reaches dst after one shell command; a share of a
    # directory inside the dataset cannot travel, and status says so
    sh(lab, "src", "mkdir -p /data/smbvol/inner && printf '[inner]\\n  path = /data/smbvol/inner\\n"
                   "[public]\\n  path = /data/smbvol\\n  read only = yes\\n' >> /etc/samba/smb.conf")
    run(lab, "src", "options")
    synced = synced_copy(lab, generation=synced["generation"] + 1)
    assert [share["name"] for share in synced["smb"]["shares"]] == ["public", "smbvol"]
    status = run(lab, "src", "retadm", "status").stdout
    assert ("config not captured: SMB share inner serves /data/smbvol/inner, a directory inside data/smbvol: "
            "not carried") in status, status

    # the last replication, then a write on src that never leaves it
    sh(lab, "src", "echo last > /data/smbvol/last.txt")
    run(lab, "src", "retadm", "inc")
    replicated = checksums(lab, "src", "/data/smbvol")
    lun = zvol_digest(lab, "src", "esx/lun01")
    sh(lab, "src", "echo late > /data/smbvol/late.txt; zpool sync data")

    lab.power_off("src")
    failover_started = time.monotonic()
    for dataset in DATASETS:
        run(lab, "dst", "retadm", "promote", dataset)
    run(lab, "dst", "restore", "all")
    sh(lab, "dst", "systemctl start smbd")
    print(f"failover on dst (promote x2, restore all, smbd): {time.monotonic() - failover_started:.0f} s")
    print(f"src powered on in {lab.power_on('src'):.0f} s")

    # src, back, is the client: the share's files and the LUN's blocks are the last replication's
    assert smb_files(lab, "src", DST) == replicated
    read = sh(lab, "src", f"systemctl start iscsid && iscsiadm -m discovery -t sendtargets -p {DST} && "
                          f"iscsiadm -m node -T {IQN} -p {DST} --login >/dev/null && udevadm settle && "
                          f"for i in $(seq 100); do [ -b {LUN_DEVICE} ] && break; sleep 0.2; done; "
                          f"sha256sum {LUN_DEVICE}", check=False)
    assert read.returncode == 0, read.stdout + read.stderr
    assert read.stdout.split()[-2] == lun
    # failback: writes on dst (a file in the share; blocks through iSCSI from the client)
    sh(lab, "dst", "echo failover > /data/smbvol/failover.txt")
    sh(lab, "src", f"dd if=/dev/urandom of={LUN_DEVICE} bs=64k count=4 seek=100 oflag=direct conv=notrunc "
                   f"status=none && sync && iscsiadm -m node -T {IQN} -p {DST} --logout >/dev/null")
    for dataset in DATASETS:
        run(lab, "dst", "retadm", "reverse", dataset, "--yes")
    assert task_states(lab, "dst") == dict.fromkeys(DATASETS, "idle")
    # planned switch back: services on dst stopped first
    sh(lab, "dst", "systemctl stop smbd && targetctl clear")
    for dataset in DATASETS:
        run(lab, "dst", "retadm", "switchback", dataset, "--yes")

    files = checksums(lab, "src", "/data/smbvol")
    assert files == checksums(lab, "dst", "/data/smbvol")
    assert set(files) == set(replicated) | {"./failover.txt"}  # late.txt was after the last replication
    assert zvol_digest(lab, "src", "esx/lun01") == zvol_digest(lab, "dst", "esx/lun01") != lun
    assert sh(lab, "src", "zfs get -H -o value readonly data/smbvol esx/lun01").stdout.split() == ["off", "off"]
    # dst is a replica again: read-only, and none of the bookmarks it kept while it was the source
    assert sh(lab, "dst", "zfs get -H -o value readonly data/smbvol esx/lun01").stdout.split() == ["on", "on"]
    assert sh(lab, "dst", "zfs list -H -o name -t bookmark -r data esx").stdout == ""
    sh(lab, "src", "echo home > /data/smbvol/home.txt")
    run(lab, "src", "retadm", "inc")
    assert task_states(lab, "src") == dict.fromkeys(DATASETS, "idle")
    assert checksums(lab, "dst", "/data/smbvol")["./home.txt"] == checksums(lab, "src", "/data/smbvol")["./home.txt"]
    print(f"drill: {time.monotonic() - drill_started:.0f} s")
