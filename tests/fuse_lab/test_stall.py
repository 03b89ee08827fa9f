"""A transfer that moves no data is stopped after ``retadm.stall.timeout`` seconds, on the
lab (real zfs-fuse, real ssh, pv's count).

The run starts over a slowed link (``tc``, 8 MB/s, so that a 64 MiB change cannot be over
before the test acts); once its progress file counts 1 MiB sent, src's link is throttled
to nothing (8 bit/s): the stream wedges.  With the limit at 3 s the run must end with one
line, exit 1, leave the task in ``error`` and its lock free, and the next run replicates.
Run with a lab of your own: ``OVIOS_LAB_NAME=stl pytest tests/fuse_lab/test_stall.py``.
"""

from __future__ import annotations

import re

from replication_helpers import checksums, init, sh, shell, status

LOG = "/var/log/ovios/repl.log"
PROGRESS = "/run/ovios/progress/data%smbvol@dst:repl%smbvol.json"  # one per task (fan-out)
RATE = "64mbit"


def _starve_once_moving(lab, at_least: int = 1 << 20) -> None:
    """In the background on src: once the run's progress file counts ``at_least`` bytes,
    src's link carries (almost) nothing; gives up quietly after 60 s."""
    sh(lab, "src",
       "( for i in $(seq 3000); do"
       f"   b=$(sed -n 's/.*\"bytes\": \\([0-9]*\\).*/\\1/p' '{PROGRESS}' 2>/dev/null);"
       f"   [ \"${{b:-0}}\" -ge {at_least} ] && break; sleep 0.02; done;"
       "  tc qdisc replace dev eth0 root handle 1: htb default 20;"
       "  tc class add dev eth0 parent 1: classid 1:20 htb rate 8bit ceil 8bit;"
       "  echo starved > /run/starved ) </dev/null >/dev/null 2>&1 &")


def _fast_link(lab) -> None:
    sh(lab, "src", "tc qdisc del dev eth0 root 2>/dev/null; true")


def test_a_transfer_that_moves_nothing_is_stopped_and_the_next_run_goes_on(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    assert shell(lab, "src", "options", "retadm.stall.timeout", "3").returncode == 0
    sh(lab, "src", "dd if=/dev/urandom of=/data/smbvol/big bs=1M count=64 2>/dev/null; rm -f /run/starved")
    sh(lab, "src", f"tc qdisc add dev eth0 root tbf rate {RATE} burst 64kb latency 100ms")
    try:
        _starve_once_moving(lab)
        wedged = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=300)  # the timeout only catches a hang
        assert sh(lab, "src", "cat /run/starved", check=False).stdout.strip() == "starved"
    finally:
        _fast_link(lab)
    assert wedged.returncode == 1, wedged
    assert re.fullmatch(r"retadm inc data/smbvol: no data moved for 3 s: the transfer was stopped \(\d+ bytes had "
                        r"moved; the limit is the option retadm\.stall\.timeout\)\n", wedged.stderr), wedged.stderr
    row = status(lab)["data/smbvol"]
    assert row["status"] == "error" and row["reason"].startswith("no data moved for 3 s: the transfer was stopped"), row
    assert " data/smbvol inc error message='no data moved for 3 s: the transfer was stopped (" in \
        sh(lab, "src", f"cat {LOG}").stdout

    # the lock is free: the next run starts (no exit 75) and, its link back, replicates
    result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=300)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["status"] == "idle"
