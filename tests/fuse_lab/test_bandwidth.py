"""A task's bandwidth limit on the lab: set at init, honoured by the background full send and
by incrementals, shown in status, changed with ``retadm edit``.  The durations asserted are
lower bounds: what a limit that holds cannot beat (they prove the limit, not a speed)."""

from __future__ import annotations

import time

from ovios_lab import Lab

from replication_helpers import sh, shell, status, wait_for


def test_the_limit_holds_for_the_full_send_and_incrementals(fresh_lab: Lab):
    lab = fresh_lab
    sh(lab, "src", "head -c 3M /dev/urandom > /data/smbvol/first.bin")
    started = time.monotonic()
    init = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl",
                 "--bandwidth", "1M")
    assert init.returncode == 0, init.stderr
    row = wait_for(lab, "data/smbvol", timeout=120)
    full = time.monotonic() - started
    assert (row["status"], row["bandwidth"]) == ("idle", 2**20), row
    assert full >= 2.5, full  # 3 MiB at 1 MiB/s
    assert "data/smbvol: transfers limited to 1.0 MiB/s" in shell(lab, "src", "retadm", "status").stdout

    edited = shell(lab, "src", "retadm", "edit", "data/smbvol", "--bandwidth", "512K")
    assert edited.stdout == "data/smbvol -> dst:repl/smbvol: bandwidth 1.0 MiB/s -> 512.0 KiB/s\n", edited.stderr
    dry = shell(lab, "src", "retadm", "inc", "data/smbvol", "--dry-run").stdout
    assert "--rate-limit 524288" in dry, dry
    sh(lab, "src", "head -c 2M /dev/urandom > /data/smbvol/second.bin")
    started = time.monotonic()
    assert shell(lab, "src", "retadm", "inc", "data/smbvol").returncode == 0
    assert time.monotonic() - started >= 3, "2 MiB at 512 KiB/s"
    assert shell(lab, "src", "retadm", "edit", "data/smbvol", "--bandwidth", "none").returncode == 0
    assert status(lab)["data/smbvol"]["bandwidth"] is None
    assert sh(lab, "dst", "sha256sum /repl/smbvol/second.bin").stdout.split()[0] == \
        sh(lab, "src", "sha256sum /data/smbvol/second.bin").stdout.split()[0]
