"""retadm watch on the lab: following a real transfer without a terminal, and nothing running."""

from __future__ import annotations

import re
import signal

import pexpect

from replication_helpers import init, sh, shell, start_inc_paused, status

PROGRESS_FILE = "/run/ovios/progress/data%smbvol@dst:repl%smbvol.json"  # one per task (fan-out)
PROGRESS_LINE = re.compile(r"^data/smbvol inc: \d+(\.\d)? (KiB|MiB|GiB) sent, \d+(\.\d)? (B|KiB|MiB|GiB)/s, "
                           r"\d+s elapsed$")


def test_watch_follows_a_running_transfer_to_its_end(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "head -c 150M /dev/urandom > /data/smbvol/big.bin")
    # the inc, caught right after its start (its runner stopped), and watch started beside it
    runner = start_inc_paused(lab)["pid"]
    sh(lab, "src", "rm -f /run/watch.rc;"
                   " setsid sh -c 'ovios-shell retadm watch data/smbvol >/run/watch.out 2>&1 </dev/null;"
                   " echo $? >/run/watch.rc' >/dev/null 2>&1 </dev/null &")
    # let the run go and hold its stream (pv stopped) for a few seconds as soon as pv runs,
    # however fast the transfer would be (on an idle machine 150 MiB take about a second), so
    # watch sees it moving (the 120 s bound only catches a hang)
    held = sh(lab, "src", f"kill -CONT {runner};"
                          f" for i in $(seq 2400); do pv=$(pgrep -P {runner} -x pv) && break; sleep 0.05; done;"
                          " [ -n \"$pv\" ] || { echo 'no pv under the run'; exit 1; };"
                          " kill -STOP $pv; sleep 3; kill -CONT $pv", check=False)
    assert held.returncode == 0, held.stdout + held.stderr
    sh(lab, "src", "for i in $(seq 600); do test -s /run/watch.rc && break; sleep 0.1; done")
    out = sh(lab, "src", "cat /run/watch.out").stdout
    assert sh(lab, "src", "cat /run/watch.rc").stdout.strip() == "0", out
    lines = out.splitlines()
    assert any(PROGRESS_LINE.match(line) for line in lines), out
    assert "\r" not in out  # no terminal: plain lines
    assert lines[-1].startswith("data/smbvol: idle — replicated to dst:repl/smbvol at @retadm_"), out
    assert re.search(r"\(1[45]\d\.\d MiB in \d+\.\ds\)$", lines[-1]), lines[-1]
    # the run removed its progress file
    assert sh(lab, "src", f"test -e '{PROGRESS_FILE}'", check=False).returncode == 1


def test_watch_with_nothing_running(fresh_lab):
    lab = fresh_lab
    result = shell(lab, "src", "retadm", "watch")
    assert (result.returncode, result.stdout) == (0, "no transfer is running (there are no replication tasks)\n")
    init(lab, "data/smbvol", "smbvol")
    result = shell(lab, "src", "retadm", "watch", "data/smbvol")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "no transfer is running for data/smbvol; the last result:"
    assert lines[1].startswith("  data/smbvol: idle — replicated to dst:repl/smbvol at @retadm_")


def _interruptible() -> None:
    """In the spawned terminal's child, before it runs anything: Ctrl-C interrupts, as in an
    administrator's login session.  A test run started as a background job of a shell without
    job control (a CI script under ``&``) inherits SIGINT ignored, and an ignored signal stays
    ignored across exec: the shell would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_on_a_terminal_stops_watching_and_the_transfer_goes_on(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "head -c 8M /dev/urandom > /data/smbvol/more.bin")
    # the inc held right after its start (its runner stopped): it is running_inc for as long as we like
    runner = start_inc_paused(lab)["pid"]
    argv = lab.exec_argv("src", ["env", "TERM=xterm", "ovios-shell", "retadm", "watch", "data/smbvol"])
    watch = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=30, dimensions=(40, 200),
                          preexec_fn=_interruptible)
    try:
        watch.expect(r"\rdata/smbvol running_inc")  # refreshed in place: carriage returns, no new lines
        watch.sendintr()
        watch.expect(r"stopped watching; the transfer of data/smbvol goes on in the background")
        watch.expect(pexpect.EOF)
    finally:
        watch.close(force=True)
    assert watch.exitstatus == 130, (watch.exitstatus, watch.signalstatus)
    assert status(lab)["data/smbvol"]["status"] == "running_inc"  # Ctrl-C reached watch only
    sh(lab, "src", f"kill -CONT {runner}; for i in $(seq 600); do grep -q ' inc end ' /var/log/ovios/repl.log"
                   " && break; sleep 0.1; done")
    assert status(lab)["data/smbvol"]["status"] == "idle"
    assert "more.bin" in sh(lab, "dst", "ls /repl/smbvol").stdout
