"""Faults injected into real runs on the lab, and what the next normal run makes of them.

Each scenario breaks something at a chosen point — a run killed mid-transfer, the network
cut, the destination pool full, the partner's host key changed, the partner gone, a
tracking snapshot or a hold removed by hand — and checks that ``retadm status --json``
tells the truth while it is broken, that the failure is one clear line, and that the next
normal run (``inc``) replicates: every file equal on both sides, every user snapshot
still there with the same guid, one tracking snapshot per side, held on both.

A run is caught mid-way deterministically: its runner is stopped (SIGSTOP) right after its
start event in repl.log, then let go with src's link throttled (``tc``, 8 MB/s), and the fault
comes once its progress file counts 8 MiB sent: the stream cannot have ended by then, whatever
the machine's speed.  Run with a lab of your own: ``OVIOS_LAB_NAME=flt pytest tests/fuse_lab/test_faults.py``.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager

from ovios_shell_retadm.replication import leftovers

import fault_scenarios
from fault_scenarios import assert_replicated
from replication_helpers import init, set_task_field, sh, shell, snapshots, status, wait_for

LOG = "/var/log/ovios/repl.log"
PROGRESS = "/run/ovios/progress/data%smbvol@dst:repl%smbvol.json"  # one per task (fan-out)
CONTROL = "ssh -O exit -o ControlPath=/run/ovios/ssh/%C dst 2>/dev/null; true"  # close retadm's master to dst
RATE = "64mbit"  # 8 MB/s: a 64 MiB change needs 8 s, so a test acts well before its end


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def _slow_link(lab):
    """src's link throttled; whatever happens, the link is up and unthrottled afterwards."""
    sh(lab, "src", f"tc qdisc add dev eth0 root tbf rate {RATE} burst 64kb latency 100ms")
    try:
        yield
    finally:
        _fast_link(lab)


def _fast_link(lab) -> None:
    sh(lab, "src", "ip link set eth0 up; tc qdisc del dev eth0 root 2>/dev/null; true")


def _starve_port(lab, port: int) -> None:
    """src's packets from TCP ``port`` held back for good (a class of 8 bit/s); the rest flows."""
    sh(lab, "src", "tc qdisc replace dev eth0 root handle 1: htb default 10;"
                   " tc class add dev eth0 parent 1: classid 1:10 htb rate 1gbit;"
                   " tc class add dev eth0 parent 1: classid 1:20 htb rate 8bit ceil 8bit;"
                   f" tc filter add dev eth0 parent 1: protocol ip u32 match ip sport {port} 0xffff flowid 1:20")


def _start_and_catch(lab, command: str, kind: str, dataset: str = "data/smbvol") -> int:
    """Start ``command`` on src in a session of its own and stop (SIGSTOP) the run it starts
    right after that run's start event; returns the runner's pid.  The command's output
    and exit status go to /run/fault.out and /run/fault.rc."""
    marker = f" {dataset} {kind} start "
    out = sh(lab, "src",
             f"n=$(grep -c '{marker}' {LOG} 2>/dev/null); rm -f /run/fault.rc;"
             f" setsid sh -c '{command} >/run/fault.out 2>&1; echo $? >/run/fault.rc' </dev/null >/dev/null 2>&1 &"
             f" for i in $(seq 400); do [ \"$(grep -c '{marker}' {LOG} 2>/dev/null)\" -gt \"${{n:-0}}\" ] && break;"
             f" sleep 0.05; done;"
             f" pid=$(grep '{marker}' {LOG} | tail -1 | sed 's/.* pid=//');"
             f" kill -STOP \"$pid\" && echo \"$pid\"").stdout
    assert out.strip().isdigit(), f"no new '{marker.strip()}' event in {LOG}"
    pid = int(out.strip())
    row = status(lab)[dataset]
    assert (row["status"], row["pid"]) == (f"running_{kind}", pid), row
    return pid


def _stream_then(lab, pid: int, action: str, at_least: int = 8 << 20) -> int:
    """Let the caught run go on until its stream has carried ``at_least`` bytes (the run's
    progress file), then do ``action`` (a shell command; ``$pgid`` is the run's process
    group) at once.  Returns the bytes counted then."""
    out = sh(lab, "src",
             f"pgid=$(ps -o pgid= -p {pid} | tr -d ' '); kill -CONT {pid};"
             f" for i in $(seq 600); do"
             f"  b=$(sed -n 's/.*\"bytes\": \\([0-9]*\\).*/\\1/p' '{PROGRESS}' 2>/dev/null);"
             f"  [ \"${{b:-0}}\" -ge {at_least} ] && break; sleep 0.05; done;"
             f" [ \"${{b:-0}}\" -ge {at_least} ] || exit 3;"
             f" {action}; echo $b").stdout
    return int(out.strip().splitlines()[-1])


def _kill_group(lab, pid: int) -> None:
    """SIGKILL to the run's whole process group (runner, zfs send, pv, ssh), stopped first,
    once its stream is under way; checks that they were all there."""
    _stream_then(lab, pid, '/bin/kill -s STOP -- "-$pgid"; ps -o comm= -g "$pgid" >/run/group.txt;'
                           ' /bin/kill -s KILL -- "-$pgid"')
    members = sh(lab, "src", "cat /run/group.txt").stdout.split()
    assert {"zfs", "pv", "ssh"} <= set(members), members


def _wait_file(lab, path: str, timeout: float = 30) -> str:
    out = sh(lab, "src", f"for i in $(seq {int(timeout * 20)}); do test -s {path} && break; sleep 0.05; done;"
                         f" cat {path}").stdout
    assert out, f"{path} did not appear in {timeout}s"
    return out


def _died(lab, pid: int, dataset: str = "data/smbvol") -> dict:
    row = wait_for(lab, dataset, ("error",), timeout=10)
    assert row["reason"] == f"the run (pid {pid}) died before it finished", row
    return row


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _inc(lab, dataset: str = "data/smbvol"):
    return shell(lab, "src", "retadm", "inc", dataset)


def _dst_receives(lab) -> list[leftovers.Receive]:
    """``zfs receive`` processes into repl/smbvol in dst (the product's own listing)."""
    result = lab.exec("dst", leftovers.listing_argv(), check=True)
    return leftovers.parse_receives(result.stdout, "repl/smbvol")


def _kept_by_the_last_run(lab) -> tuple[str, ...]:
    """Tracking snapshots the last run left on the source because they were busy (its log)."""
    log = sh(lab, "src", f"cat {LOG}").stdout.splitlines()
    last = max(i for i, line in enumerate(log) if " data/smbvol " in line and line.split()[3] == "start")
    found = re.findall(r"what='kept @(retadm_\S+) on the source: it is busy", "\n".join(log[last:]))
    return tuple(dict.fromkeys(found))


def _settle_user_state(lab) -> None:
    """A user file and a user snapshot, both replicated by the init that follows."""
    sh(lab, "src", "echo mine > /data/smbvol/mine.txt; zfs snapshot data/smbvol@before")


# -- 1. the sender killed mid-way through the full send ------------------------------------------


def test_kill_9_mid_full_send_then_inc_finishes_the_full_replication(fresh_lab):
    lab = fresh_lab
    _settle_user_state(lab)
    sh(lab, "src", "head -c 150M /dev/urandom > /data/smbvol/big.bin")
    with _slow_link(lab):
        pid = _start_and_catch(lab, "ovios-shell retadm init data/smbvol --dest dst --remote-pool repl"
                                    " --properties no", "full")
        # the worker: the one-shot init's process, forked (init exits once it has started)
        assert sh(lab, "src", f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout.split()[-9:] == \
            ["retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl", "--properties", "no"]
        assert _wait_file(lab, "/run/fault.rc").strip() == "0"  # init said "started"
        _kill_group(lab, pid)
        _died(lab, pid)
        _fast_link(lab)
    left = [s for s in snapshots(lab, "src", "data/smbvol") if s.startswith("retadm_")]
    assert len(left) == 1  # the killed run's tracking snapshot
    # no waiting for the partner to clean up: the next run copes with whatever is there
    started = time.monotonic()
    result = _inc(lab)
    took = time.monotonic() - started
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr
    log = sh(lab, "src", f"cat {LOG}").stdout
    assert log.count(" data/smbvol full start ") == 2  # inc finished the full replication
    assert sh(lab, "dst", "zfs list -H -o name -r repl").stdout.split() == ["repl", "repl/smbvol"]
    # zfs-fuse keeps the temporary holds of the killed `zfs send -I` (until the pool is imported
    # again): the run leaves that snapshot on the source, says so, and succeeds
    kept = _kept_by_the_last_run(lab)
    assert set(kept) <= set(left)
    assert_replicated(lab, user_snapshots=("before",), user_files=("mine.txt", "big.bin"), kept=kept)
    assert _inc(lab).returncode == 0 and status(lab)["data/smbvol"]["status"] == "idle"
    print(f"full killed mid-stream; inc finished it in {took:.1f}s (kept on the source: {kept})")


# -- 2. the whole process group killed mid-incremental -------------------------------------------


def test_kill_9_of_the_whole_run_mid_incremental_then_inc_succeeds(fresh_lab):
    lab = fresh_lab
    _settle_user_state(lab)
    first = init(lab, "data/smbvol", "smbvol")["last_snapshot"]
    sh(lab, "src", "head -c 64M /dev/urandom > /data/smbvol/big.bin; zfs snapshot data/smbvol@during")
    with _slow_link(lab):
        pid = _start_and_catch(lab, "ovios-shell retadm inc data/smbvol", "inc")
        _kill_group(lab, pid)
        _died(lab, pid)
        # the replica is where it was: the common snapshot, nothing half-received
        assert snapshots(lab, "dst", "repl/smbvol") == ["before", first]
        _fast_link(lab)
    left = [s for s in snapshots(lab, "src", "data/smbvol") if s.startswith("retadm_")]
    assert len(left) == 2 and left[0] == first  # and the killed run's
    result = _inc(lab)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr
    kept = _kept_by_the_last_run(lab)  # busy: zfs-fuse keeps the killed send's temporary holds
    assert set(kept) <= set(left)
    assert_replicated(lab, user_snapshots=("before", "during"), user_files=("mine.txt", "big.bin"), kept=kept)


# -- 3. the network cut mid-transfer -------------------------------------------------------------


def test_network_cut_mid_transfer_fails_in_bounded_time_then_inc_succeeds(fresh_lab):
    lab = fresh_lab
    _settle_user_state(lab)
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "head -c 64M /dev/urandom > /data/smbvol/big.bin")
    with _slow_link(lab):
        pid = _start_and_catch(lab, "ovios-shell retadm inc data/smbvol", "inc")
        _stream_then(lab, pid, "ip link set eth0 down")
        cut = time.monotonic()
        # bounded: ssh's ServerAlive (10 s × 3) notices the silence, the run fails (the limit
        # here only catches a run that never fails: how long it took is printed below)
        deadline = cut + 180
        while sh(lab, "src", "test -s /run/fault.rc", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the run did not fail within 180 s of the cut"
            assert status(lab)["data/smbvol"]["status"] in ("running_inc", "error")  # never idle
            time.sleep(0.5)
        failed_after = time.monotonic() - cut
        assert sh(lab, "src", "cat /run/fault.rc").stdout.strip() == "1"
        line = _one_line(sh(lab, "src", "cat /run/fault.out").stdout)
        # what failed, how far the stream got, what the next run does
        reason = re.fullmatch(
            r"dst: connection lost during the transfer \(the partner stopped answering: down, or the network cut\)"
            r" after [0-9.]+ [KMG]iB; the next run resumes a partial receive if the partner kept one, else starts "
            r"this send over", line.removeprefix("retadm inc data/smbvol: "))
        assert reason is not None and line.startswith("retadm inc data/smbvol: "), line
        row = status(lab)["data/smbvol"]
        assert (row["status"], row["reason"]) == ("error", reason.group(0))
        # retadm's master died with the connection: nothing stale is left to hang the next run
        assert sh(lab, "src", "ls /run/ovios/ssh").stdout == ""
        # the partner did not notice: its receive still waits for the rest of the stream, and
        # holds the replica busy
        stale = _dst_receives(lab)
        assert len(stale) == 1 and stale[0].connection is not None, stale
        # the link comes back, but not the old connection: src's kernel would otherwise still
        # deliver what that socket had queued, and end the partner's receive at a moment of
        # its retransmission timer's choosing
        _starve_port(lab, stale[0].connection[1])
        sh(lab, "src", "ip link set eth0 up")
        started = time.monotonic()
        result = _inc(lab)
        took = time.monotonic() - started
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr
    log = sh(lab, "src", f"cat {LOG}").stdout
    assert (f"inc step what=\"stop 'zfs receive -u repl/smbvol' (pid {stale[0].pid}, " in log
            and "s old) on dst: a dead run left it, the connection that fed it is gone\"" in log), log
    assert_replicated(lab, user_snapshots=("before",), user_files=("mine.txt", "big.bin"))
    assert _dst_receives(lab) == []
    print(f"the run failed {failed_after:.1f}s after the cut; the next inc took {took:.1f}s")


# -- 4. the destination pool full ----------------------------------------------------------------


def _destroy(lab, node: str, dataset: str) -> None:
    """zfs-fuse answers "dataset is busy" for a moment after a big write: bounded retries."""
    for _ in range(20):
        if sh(lab, node, f"zfs destroy -f -r {dataset}", check=False).returncode == 0:
            return
        time.sleep(0.25)
    raise AssertionError(f"cannot destroy {dataset} on {node}")


def test_destination_pool_full_is_a_clear_error_that_leaves_nothing_behind(fresh_lab):
    lab = fresh_lab
    _settle_user_state(lab)
    common = init(lab, "data/smbvol", "smbvol")["last_snapshot"]
    fill = sh(lab, "dst", "zfs create repl/filler; dd if=/dev/urandom of=/repl/filler/fill bs=1M 2>&1; true").stdout
    assert "No space left on device" in fill, fill
    before = sh(lab, "dst", "zfs list -H -t all -o name -r repl").stdout
    sh(lab, "src", "head -c 24M /dev/urandom > /data/smbvol/big.bin")

    result = _inc(lab)
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith("retadm inc data/smbvol: ") and "space" in line, line
    row = status(lab)["data/smbvol"]
    assert row["status"] == "error" and "space" in row["reason"] and row["last_snapshot"] == common, row
    # nothing half-made on dst: the same datasets and snapshots, the replica at the common snapshot
    assert sh(lab, "dst", "zfs list -H -t all -o name -r repl").stdout == before
    assert snapshots(lab, "dst", "repl/smbvol") == ["before", common]
    assert _dst_receives(lab) == []

    _destroy(lab, "dst", "repl/filler")
    result = _inc(lab)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert_replicated(lab, user_snapshots=("before",), user_files=("mine.txt", "big.bin"))


# -- 5. the partner's host key changed -----------------------------------------------------------


def test_a_changed_host_key_is_refused_and_never_accepted(fresh_lab):
    lab = fresh_lab
    _settle_user_state(lab)
    common = init(lab, "data/smbvol", "smbvol")["last_snapshot"]
    sh(lab, "src", "echo newer > /data/smbvol/newer.txt")
    real = sh(lab, "src", "cat /root/.ssh/known_hosts").stdout
    assert real.startswith("dst,192.168.0.111 ")
    # another key of the same type for dst, by name and by address; retadm's master closed,
    # so that the next run has to make a new connection and check the key
    sh(lab, "src", "rm -f /run/impostor*; ssh-keygen -q -t ed25519 -N '' -f /run/impostor;"
                   " key=$(cut -d' ' -f1,2 /run/impostor.pub);"
                   " printf 'dst %s\\n192.168.0.111 %s\\n' \"$key\" \"$key\" > /root/.ssh/known_hosts;"
                   f" {CONTROL}")
    forged = sh(lab, "src", "cat /root/.ssh/known_hosts").stdout
    try:
        result = _inc(lab)
        assert result.returncode == 1
        reason = ("dst: host key CHANGED, refusing to connect (possible man-in-the-middle; if the node was "
                  "reinstalled, verify its new key and remove the old one with ssh-keygen -R)")
        assert _one_line(result.stderr) == f"retadm inc data/smbvol: {reason}"
        row = status(lab)["data/smbvol"]
        assert (row["status"], row["reason"], row["last_snapshot"]) == ("error", reason, common)
        assert sh(lab, "src", "cat /root/.ssh/known_hosts").stdout == forged  # nothing accepted, nothing added
        assert snapshots(lab, "dst", "repl/smbvol") == ["before", common]  # nothing sent
        assert "newer.txt" not in sh(lab, "dst", "ls /repl/smbvol").stdout
    finally:
        lab.exec("src", ["sh", "-c", "cat > /root/.ssh/known_hosts"], input=real, check=True)
    result = _inc(lab)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert_replicated(lab, user_snapshots=("before",), user_files=("mine.txt", "newer.txt"))


# -- 6. the partner unreachable ------------------------------------------------------------------


def _set_destination(lab, address: str) -> None:
    set_task_field(lab, "data/smbvol", "destination", address)


def _unreachable(lab, partner: str, doctor: bool = True) -> dict[str, float]:
    """inc fails with one line; status answers; doctor fails the ssh check.  Each command's
    seconds are returned and printed, not asserted (a busy machine): the commands' own
    timeouts (shell's 120 s) only catch a hang."""
    timings = {}
    started = time.monotonic()
    result = _inc(lab)
    timings["inc"] = time.monotonic() - started
    assert result.returncode == 1, (result, timings)
    line = _one_line(result.stderr)
    assert line.startswith(f"retadm inc data/smbvol: {partner}: unreachable: connect to host {partner} port 22: "), line
    started = time.monotonic()
    row = status(lab)["data/smbvol"]
    timings["status"] = time.monotonic() - started
    assert row["status"] == "error" and row["reason"] == line.removeprefix("retadm inc data/smbvol: "), row
    if doctor:
        started = time.monotonic()
        result = shell(lab, "src", "retadm", "doctor", "data/smbvol")
        timings["doctor"] = time.monotonic() - started
        assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
        assert f"  FAIL  ssh src→{partner}: {partner}: unreachable: " in result.stdout, result.stdout
    return timings


def test_an_unreachable_partner_fails_fast_and_status_still_answers(fresh_lab):
    lab = fresh_lab
    _settle_user_state(lab)
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "echo while-away > /data/smbvol/away.txt")

    # the task re-pointed to an address nobody answers (doctor: see tests/fuse_lab/test_doctor.py)
    _set_destination(lab, "192.168.0.99")
    moved = _unreachable(lab, "192.168.0.99", doctor=False)
    _set_destination(lab, "dst")

    # dst's link down, retadm's master closed: a new connection has to time out
    sh(lab, "src", CONTROL)
    sh(lab, "dst", "ip link set eth0 down")
    try:
        down = _unreachable(lab, "dst")
    finally:
        sh(lab, "dst", "ip link set eth0 up")

    result = _inc(lab)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert_replicated(lab, user_snapshots=("before",), user_files=("mine.txt", "away.txt"))
    print(f"address nobody answers: {moved}; partner's link down: {down}")


# -- 7. the source's tracking snapshot destroyed by hand -----------------------------------------


def test_tracking_snapshot_destroyed_on_the_source_goes_on_from_a_user_snapshot(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "echo monday > /data/smbvol/monday.txt; zfs snapshot data/smbvol@monday;"
                   " echo later > /data/smbvol/later.txt")
    assert _inc(lab).returncode == 0
    tracking = status(lab)["data/smbvol"]["last_snapshot"]
    assert snapshots(lab, "dst", "repl/smbvol") == ["monday", tracking]
    # by hand on the source: our hold released, our snapshot destroyed; then more changes
    tag = status(lab)["data/smbvol"]["hold_tag"]
    sh(lab, "src", f"zfs release {tag} data/smbvol@{tracking}; zfs destroy data/smbvol@{tracking};"
                   " echo after > /data/smbvol/after.txt")
    assert status(lab)["data/smbvol"]["status"] == "idle"  # the last run did succeed
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol")
    assert f"  WARN  divergence: the destination still has @{tracking} after @monday: tracking snapshots the " \
           "source no longer has" in doctor.stdout, doctor.stdout

    result = _inc(lab)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    log = sh(lab, "src", f"cat {LOG}").stdout
    assert f"roll the destination back to @monday: discards its changes since then and destroys @{tracking}" in log
    assert "send the changes @monday -> @retadm_" in log  # from the user snapshot, found by guid
    common = assert_replicated(lab, user_snapshots=("monday",), user_files=("monday.txt", "later.txt", "after.txt"))
    assert snapshots(lab, "dst", "repl/smbvol") == ["monday", common]


# -- 8. our holds released by hand on both sides -------------------------------------------------


def test_holds_released_by_hand_are_put_back_by_the_next_run(fresh_lab):
    lab = fresh_lab
    _settle_user_state(lab)
    row = init(lab, "data/smbvol", "smbvol")
    common, tag = row["last_snapshot"], row["hold_tag"]
    sh(lab, "src", f"zfs release {tag} data/smbvol@{common}")
    sh(lab, "dst", f"zfs release {tag} repl/smbvol@{common}")
    for node, dataset in (("src", "data/smbvol"), ("dst", "repl/smbvol")):
        assert sh(lab, node, f"zfs get -H -o value userrefs {dataset}@{common}").stdout.strip() == "0"

    result = _inc(lab)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    new = assert_replicated(lab, user_snapshots=("before",), user_files=("mine.txt",))  # userrefs 1 on both
    assert new != common and common not in snapshots(lab, "src", "data/smbvol")
    assert json.loads(shell(lab, "src", "retadm", "status", "--json").stdout)[0]["status"] == "idle"


# -- 9-11. scenarios shared with the OpenZFS lab (tests/fault_scenarios.py) ----------------------


def test_destination_rolled_back_by_hand_then_inc_goes_on_from_the_older_snapshot(fresh_lab):
    fault_scenarios.destination_rolled_back(fresh_lab, timeout=120)


def test_destination_modified_then_repair_asks_before_rolling_it_back(fresh_lab):
    fault_scenarios.destination_modified(fresh_lab, timeout=120)
