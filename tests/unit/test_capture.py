"""Reading the node's services back into its configuration (restore's other way round): the
parsers over the tools' real output formats, and the capture's bookkeeping (what is read
again when). The round trip through the real services: tests/openzfs_lab/test_drill.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ovios_shell_retadm import captured
from ovios_shell_retadm.config import files
from ovios_shell_retadm.config.model import Configuration, Export, Lun, Share, Target, User, with_export
from ovios_shell_retadm.restore import capture

IQN = "iqn.2026-11.com.ovios:esx"
ESX = "iqn.1998-01.com.vmware:esx1"
NT = "8846F7EAEE8FB117AD06BDD830B7586C"
MOUNTED = {"/data/smbvol": "data/smbvol", "/data": "data", "/": "rpool/root"}


def saveconfig(luns, acls=(), authentication="0", tpgs=1):
    """targetcli's saveconfig.json, as rtslib-fb writes it (the parts read)."""
    return {
        "storage_objects": [
            {"dev": "/dev/zvol/esx/lun01", "name": "esx-lun01", "plugin": "block"},
            {"dev": "/dev/sdb", "name": "disk", "plugin": "block"},
            {"dev": "/var/lib/lun.img", "name": "file", "plugin": "fileio"},
        ],
        "targets": [{"fabric": "iscsi", "wwn": IQN.upper(), "tpgs": [{
            "tag": 1, "attributes": {"authentication": authentication},
            "luns": [{"index": index, "storage_object": so} for index, so in luns],
            "node_acls": [{"node_wwn": acl, "mapped_luns": []} for acl in acls]}] * tpgs}],
    }


def zvol_of(device):
    return device.removeprefix("/dev/zvol/") if device.startswith("/dev/zvol/") else None


def test_luns_on_zvols_are_carried_the_rest_named():
    targets, notes = capture.targets_from_saveconfig(
        saveconfig([(0, "/backstores/block/esx-lun01"), (1, "/backstores/block/disk"),
                    (2, "/backstores/fileio/file")], acls=[ESX]), zvol_of)
    assert targets == (Target(IQN, (ESX,), (Lun(0, "esx/lun01"),)),)
    assert notes == [f"LUN 1 of {IQN} is backed by /dev/sdb, not a zvol: not carried",
                     f"LUN 2 of {IQN} is backed by /var/lib/lun.img, not a zvol: not carried"]


def test_chap_and_a_second_tpg_are_named():
    _, notes = capture.targets_from_saveconfig(
        saveconfig([(0, "/backstores/block/esx-lun01")], authentication="1", tpgs=2), zvol_of)
    assert notes == [f"iSCSI target {IQN}: only its first TPG is carried (2 configured)",
                     f"iSCSI target {IQN}: CHAP authentication is not carried"]


TESTPARM = """# Global parameters
[global]
\tserver role = standalone server
\tmap to guest = Bad User

[smbvol]
\tpath = /data/smbvol
\tread only = No
\tvalid users = alice bob

[archive]
\tpath = /data/smbvol/archive/

[guest]
\tguest ok = Yes
\tpath = /data/smbvol

[print$]
\tpath = /var/lib/samba/printers
"""


def test_shares_of_datasets_are_carried():
    shares, notes = capture.shares_from_testparm(TESTPARM, MOUNTED)
    assert shares == (Share("guest", "data/smbvol", read_only=True),
                      Share("smbvol", "data/smbvol", read_only=False, valid_users=("alice", "bob")))
    assert notes == [
        "SMB share archive serves /data/smbvol/archive, a directory inside data/smbvol: not carried "
        "(a share must serve a dataset's mountpoint)",
        "SMB share guest: 'guest ok' not carried"]


def test_exports_of_datasets_are_carried():
    text = ("# a comment\n/data/smbvol 192.168.0.0/24(rw,sync,no_subtree_check) \\\n"
            "    10.0.0.5(ro)\n/data/smbvol/sub *(ro)\n/srv/other host(rw)\n")
    exports, notes = capture.exports_from(text, MOUNTED)
    assert exports == (Export("data/smbvol", "192.168.0.0/24", "rw,sync,no_subtree_check"),)
    assert notes == ["NFS export /data/smbvol: only its first client (192.168.0.0/24) is carried, not 10.0.0.5",
                     "NFS export /data/smbvol/sub is a directory inside data/smbvol: not carried"]


def test_users_carry_their_nt_hash():
    text = (f"alice:2001:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:{NT.lower()}:[U          ]:LCT-6568A2B1:\n"
            f"old:2002:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:{NT}:[DU         ]:LCT-6568A2B1:\n"
            "nohash:2003:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:[U          ]:LCT-0:\n")
    users, notes = capture.users_from_pdbedit(text)
    assert users == (User("alice", 2001, NT),)
    assert notes == ["Samba user old is disabled: not carried", "Samba user nohash has no NT hash: not carried"]


# -- the capture's bookkeeping ------------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path, monkeypatch) -> Path:
    """A node under OVIOS_ROOT with NFS set up (its exports) and nothing else; its datasets'
    mountpoints (zfs list) as MOUNTED."""
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    monkeypatch.setattr(capture, "_mountpoints", lambda: dict(MOUNTED))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "exports").write_text("/data/smbvol 192.168.0.0/24(rw,sync)\n")
    return tmp_path


def test_a_part_is_read_again_only_when_its_files_change(node: Path):
    assert capture.refresh() == ["exports"]  # the only part set up here
    config = files.load()
    assert (config.exports, config.generation) == ((Export("data/smbvol", "192.168.0.0/24", "rw,sync"),), 1)
    assert capture.refresh() == []  # nothing changed: nothing read, nothing written
    assert files.load().generation == 1

    (node / "etc" / "exports").write_text("/data/smbvol 10.0.0.0/8(ro)\n")
    assert capture.refresh() == ["exports"]
    assert files.load().exports == (Export("data/smbvol", "10.0.0.0/8", "ro"),)
    assert files.load().generation == 2


def test_a_part_not_set_up_here_leaves_its_section_alone(node: Path):
    files.update(lambda c: Configuration(users=(User("alice", 2001, NT),)))  # written by other means
    capture.refresh()
    assert files.load().users == (User("alice", 2001, NT),)
    # the exports file goes away: what the capture put there goes with it, nothing else
    (node / "etc" / "exports").unlink()
    assert capture.refresh() == ["exports"]
    assert (files.load().exports, files.load().users) == ((), (User("alice", 2001, NT),))


def test_a_service_is_set_up_by_its_own_file_not_a_shared_one(node: Path):
    """/etc/passwd is read for the users only where Samba has an account database."""
    (node / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    assert capture.fingerprints()["users"] is None
    assert capture.refresh() == ["exports"]


def test_what_cannot_be_carried_is_kept_as_notes(node: Path):
    (node / "etc" / "exports").write_text("/data/smbvol/sub *(ro)\n")
    capture.refresh()
    assert captured.notes() == ["NFS export /data/smbvol/sub is a directory inside data/smbvol: not carried"]
    assert json.loads(captured.state_path().read_text())["notes"]["exports"] == captured.notes()


@pytest.mark.skipif(shutil.which("testparm") is None, reason="testparm (samba-common-bin) missing")
def test_a_capture_that_breaks_a_rule_changes_nothing(node: Path):
    """A share's valid user who is no Samba user: the configuration would not hold together."""
    files.update(lambda c: with_export(c, Export("data/old", "*", "ro")))
    (node / "etc" / "samba").mkdir()
    (node / "etc" / "samba" / "smb.conf").write_text("[smbvol]\n  path = /data/smbvol\n  valid users = ghost\n")
    before = files.load()
    assert "shares" in capture.refresh()
    assert files.load() == before
    assert any("valid user ghost is not a configured user" in note for note in captured.notes()), captured.notes()
    assert "shares" in capture.refresh()  # tried again at the next trigger, not taken as done
