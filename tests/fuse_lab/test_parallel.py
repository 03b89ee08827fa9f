"""``retadm inc`` without a dataset runs the tasks side by side, within the options' limits.

data/smbvol and esx/lun01 are both replicated to dst.  data/smbvol's send is held (its
``zfs send`` stopped) while the run of esx/lun01 goes on to its end: that happens only if
the two run at once, since one after the other data/smbvol (first in the task list) would
have to end first.  With ``retadm.parallel.partner`` 1 the two runs towards dst do not overlap.
"""

from __future__ import annotations

from replication_helpers import checksums, init, sh, shell

LOG = "/var/log/ovios/repl.log"


def events(lab) -> list[tuple[str, str]]:
    """(dataset, event) of the inc runs' start and end lines in repl.log, in order."""
    lines = sh(lab, "src", f"grep -E ' inc (start|end) ' {LOG}").stdout.splitlines()
    return [(line.split()[1], line.split()[3]) for line in lines]


def test_runs_go_side_by_side_and_one_at_a_time_towards_a_partner_when_asked(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    init(lab, "esx/lun01", "lun01")
    sh(lab, "src", "head -c 64M /dev/urandom > /data/smbvol/big.bin; echo more > /esx/lun01/more.txt;"
                   f" : > {LOG}")
    # the inc of every task, in the background; data/smbvol's send is stopped as soon as it runs
    # and goes on once esx/lun01's run has ended (the bounds of 120 s only catch a hang; zfs-fuse's
    # zfs writes over the @ in its arguments, so the pattern does without it)
    held = sh(lab, "src", "setsid sh -c 'exec ovios-shell retadm inc >/run/inc.out 2>&1' </dev/null >/dev/null 2>&1 &"
                          " inc=$!; for i in $(seq 2400); do"
                          "   send=$(pgrep -P $inc -f '^zfs send .* data/smbvol') && break; sleep 0.05; done;"
                          " [ -n \"$send\" ] || { echo 'no send of data/smbvol'; exit 1; }; kill -STOP $send;"
                          f" for i in $(seq 2400); do grep -q '^[^ ]* esx/lun01 inc end ' {LOG} && break; sleep 0.05;"
                          " done; kill -CONT $send; wait $inc; echo \"ended $?\"",
              check=False, timeout=400)
    assert held.stdout.strip() == "ended 0", (held.stdout, held.stderr)
    assert sh(lab, "src", "cat /run/inc.out").stdout == ""
    order = events(lab)
    assert order.index(("esx/lun01", "end")) < order.index(("data/smbvol", "end")), order
    assert order.index(("data/smbvol", "start")) < order.index(("esx/lun01", "end")), order  # (both at once)
    assert checksums(lab, "dst", "/repl/smbvol") == checksums(lab, "src", "/data/smbvol")
    assert checksums(lab, "dst", "/repl/lun01") == checksums(lab, "src", "/esx/lun01")

    # one run at a time towards dst: each run ends before the next starts
    assert shell(lab, "src", "options", "retadm.parallel.partner", "1").returncode == 0
    sh(lab, "src", f"echo again > /data/smbvol/again.txt; echo again > /esx/lun01/again.txt; : > {LOG}")
    result = shell(lab, "src", "retadm", "inc")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    order = events(lab)
    assert [event for _dataset, event in order] == ["start", "end", "start", "end"], order
    assert {dataset for dataset, _event in order} == {"data/smbvol", "esx/lun01"}
