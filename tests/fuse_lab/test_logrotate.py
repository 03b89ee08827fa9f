"""The logrotate configuration the set-up installs (``logrotate/ovios-shell``), run by the real
logrotate inside a lab node, over the logs of real runs, rotated while the runs write."""

from __future__ import annotations

from pathlib import Path

from ovios_lab import Lab

from replication_helpers import sh, shell, wait_for

CONFIG = Path(__file__).resolve().parents[2] / "logrotate" / "ovios-shell"
ROTATE = f"logrotate -f -s /var/log/ovios/.logrotate.state {CONFIG}"
RUNS = 8


def test_rotation_in_the_middle_of_runs_loses_no_line(fresh_lab: Lab):
    lab = fresh_lab
    init = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl")
    assert init.returncode == 0, init.stderr
    assert wait_for(lab, "data/smbvol")["status"] == "idle"
    # runs one after the other, each with something to send, while the logs are rotated
    sh(lab, "src", f"for i in $(seq {RUNS}); do echo $i > /data/smbvol/run-$i.txt; ovios-shell retadm inc "
                   "data/smbvol >/dev/null || exit 1; done & runs=$!; "
                   f"for i in 1 2 3 4; do sleep 0.7; {ROTATE}; done; wait $runs", timeout=600)
    names = sh(lab, "src", "ls /var/log/ovios").stdout.split()
    assert "repl.log.1" in names and any(name.endswith(".gz") for name in names), names
    lines = sh(lab, "src", "cd /var/log/ovios && zcat -f repl.log*").stdout.splitlines()
    incs = [line for line in lines if " data/smbvol inc " in line]
    starts = [line for line in incs if " inc start " in line]
    ends = [line for line in incs if " inc end " in line]
    assert (len(starts), len(ends)) == (RUNS, RUNS), incs
    # and the full send's lines from before, in the oldest file
    assert any(" data/smbvol full end " in line for line in lines), lines
    assert sh(lab, "src", "stat -c '%a %U' /var/log/ovios/repl.log").stdout.split() == ["640", "root"]
