"""Power a VM of the OpenZFS lab off (QEMU killed: a power cut) and on again with its disks."""

from __future__ import annotations

import pytest

from ovios_lab import LabError

from openzfs_helpers import zvol_digest
from replication_helpers import sh


def test_power_off_and_on_keeps_the_disks_and_the_link(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    sh(lab, "src", "echo before-the-cut > /data/smbvol/cut.txt && zpool sync data")
    lun = zvol_digest(lab, "src", "esx/lun01")
    qemu = lab.status().nodes[0].pid

    lab.power_off("src")
    status = {n.name: n for n in lab.status().nodes}
    assert status["src"].powered_off and status["src"].pid is None and not status["dst"].powered_off
    assert qemu not in lab.processes()
    with pytest.raises(LabError, match=r"^src of lab \S+ is powered off \(run: ovios-lab power-on --openzfs src\)$"):
        lab.exec("src", ["true"])
    assert not lab.is_up()
    assert lab.exec("dst", ["true"]).returncode == 0  # the other VM runs on
    lab.power_off("src")  # again: nothing to do

    seconds = lab.power_on("src")
    print(f"src powered on in {seconds:.0f} s")
    assert lab.is_up()
    assert not {n.name: n for n in lab.status().nodes}["src"].powered_off
    assert sh(lab, "src", "cat /data/smbvol/cut.txt").stdout == "before-the-cut\n"
    assert sh(lab, "src", "zpool list -H -o name,health").stdout.split() == ["data", "ONLINE", "esx", "ONLINE"]
    assert sh(lab, "src", "zfs get -H -o value mounted data/smbvol").stdout.strip() == "yes"
    assert zvol_digest(lab, "src", "esx/lun01") == lun
    # the VM-to-VM link works again, both ways (the product's sshd, root's keys)
    assert sh(lab, "src", "ssh -o BatchMode=yes -o ConnectTimeout=30 dst hostname").stdout.strip() == "dst"
    assert sh(lab, "dst", "ssh -o BatchMode=yes -o ConnectTimeout=30 src hostname").stdout.strip() == "src"
    assert lab.power_on("src") == 0.0  # running: left alone
