"""`retadm doctor` without a lab: every check's levels, the lag against the schedule, the
output format, skipping what depends on a failed check, and the exit status."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import replace
from typing import Any

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm import cron
from ovios_shell_retadm.hosts import HostUnreachable, Result
from ovios_shell_retadm.replication import doctor
from ovios_shell_retadm.replication.doctor import FAIL, OK, SKIP, WARN, Check, checks
from ovios_shell_retadm.replication.doctor.facts import Environment, Missing, gather
from ovios_shell_retadm.replication.leftovers import Receive
from ovios_shell_retadm.replication.model import Observed, ObservedBookmark, ObservedSnapshot
from ovios_shell_retadm.replication.preflight import PreflightError
from ovios_shell_retadm.replication.task_lock import Runner, TaskLock, lock_holder
from ovios_shell_retadm.replication.task_store import (
    ERROR,
    IDLE,
    RUNNING_FULL,
    RUNNING_INC,
    Status,
    TaskRecord,
    TaskStore,
)
from ovios_shell_retadm.shell import OviosShell
from ovios_shell_retadm.store import TaskKey
from ovios_shell_retadm.zfs import ZfsNode

NOW = 1_800_000_000.0


def record(**changes) -> TaskRecord:
    values: dict[str, Any] = {"dataset": "data/smbvol", "destination": "dst", "remote_dataset": "repl/smbvol",
                              "properties": False, "state": IDLE, "initialised": True, "last_success": NOW - 60,
                              "last_snapshot": "retadm_b", "last_guid": 2, "last_bytes": 1000}
    values.update(changes)
    return TaskRecord(**values)


def snaps(*specs: tuple[str, int]) -> tuple[ObservedSnapshot, ...]:
    return tuple(ObservedSnapshot(name, guid, txg) for txg, (name, guid) in enumerate(specs, start=1))


B_ONLY = snaps(("retadm_b", 2))


def observed(source=B_ONLY, destination=B_ONLY, **more) -> Observed:
    more.setdefault("source_holds", frozenset({"retadm_b"}))
    more.setdefault("destination_holds", frozenset({"retadm_b"}))
    return Observed(source=source, destination=destination, **more)


# -- the line -------------------------------------------------------------------------------


def test_a_check_is_one_line_with_its_level_in_a_column():
    assert Check("ssh src→dst", OK, "passwordless").line() == "  OK    ssh src→dst: passwordless"
    assert Check("destination pool repl", FAIL, "not found on dst", "zpool import repl").line() == \
        "  FAIL  destination pool repl: not found on dst — hint: zpool import repl"
    assert Check("x", WARN, "y").line().startswith("  WARN  x: ")
    assert Check("x", SKIP, "not checked: z").line().startswith("  SKIP  x: ")


# -- lag against the schedule -------------------------------------------------------------


@pytest.mark.parametrize("schedule, seconds", [
    ("*/5 * * * *", 300),
    ("*/15 * * * *", 900),
    ("* * * * *", 60),
    ("7 * * * *", 3600),
    ("@hourly", 3600),
    ("30 2 * * *", 86400),
    ("@daily", 86400),
    ("*/5 8-18 * * *", None),
    ("0 2 * * 1-5", None),
    ("@reboot", None),
])
def test_schedule_interval(schedule, seconds):
    assert checks.schedule_interval(schedule) == seconds


def test_the_lag_limit_is_three_intervals_of_the_shortest_schedule_else_an_hour():
    assert checks.lag_limit(["*/5 * * * *"]) == (900, "3 × the schedule '*/5 * * * *'")
    assert checks.lag_limit(["@hourly", "*/10 * * * *"])[0] == 1800
    assert checks.lag_limit([])[0] == 3600
    assert checks.lag_limit(["0 2 * * 1-5"])[0] == 3600


@pytest.mark.parametrize("lag, schedules, level", [
    (14 * 60, ["*/5 * * * *"], OK),
    (16 * 60, ["*/5 * * * *"], WARN),
    (59 * 60, [], OK),
    (61 * 60, [], WARN),
    (2 * 86400, ["0 3 * * *"], OK),
    (4 * 86400, ["0 3 * * *"], WARN),
])
def test_lag_levels(lag, schedules, level):
    check = checks.check_lag("lag", record(last_success=NOW - lag), Status(IDLE, None), schedules, NOW)
    assert check.level == level, check
    assert check.message.startswith("last success ")
    assert (check.hint is not None) == (level == WARN)


def test_lag_of_a_task_that_never_succeeded():
    never = record(last_success=None, initialised=False, state=RUNNING_FULL)
    assert checks.check_lag("lag", never, Status(RUNNING_FULL, None), [], NOW).level == OK
    check = checks.check_lag("lag", never, Status(ERROR, "boom"), [], NOW)
    assert (check.level, check.hint) == (WARN, "'retadm inc data/smbvol' finishes the full replication")


# -- each check's levels ----------------------------------------------------------------------


def test_free_space():
    mib = 1024 * 1024
    assert checks.check_space("free", 900 * mib, 100 * mib, 10 * mib).level == OK
    assert "900.0 MiB free (90% of 1000.0 MiB)" in checks.check_space("free", 900 * mib, 100 * mib, None).message
    small = checks.check_space("free", 900 * mib, 100 * mib, 500 * mib)
    assert small.level == WARN and "less than 2 × the last run's 500.0 MiB" in small.message
    full = checks.check_space("free", 50 * mib, 950 * mib, None)
    assert full.level == WARN and "under 10%" in full.message


@pytest.mark.parametrize("option_on, running, level, hint", [
    (True, True, OK, None),
    (True, False, WARN, "'options cron.enable on' starts it again"),
    (False, True, WARN, "'options cron.enable on'"),
    (False, False, WARN, "'options cron.enable on'"),
])
def test_cron_service(option_on, running, level, hint):
    check = checks.check_cron_service("cron service", option_on, running)
    assert (check.level, check.hint) == (level, hint)


def test_cron_line():
    entries, _ = cron.parse("# OviOS\n*/5 * * * *  /usr/bin/ovios-shell retadm inc data/smbvol\n"
                            "0 * * * * /usr/bin/ovios-shell retadm inc esx/lun01\n")
    check, schedules = checks.check_cron_line("cron line", "data/smbvol", entries)
    assert (check.level, check.message, schedules) == (OK, "'*/5 * * * *' (line 2)", ["*/5 * * * *"])
    check, schedules = checks.check_cron_line("cron line", "data/other", entries)
    assert check.level == WARN and schedules == []
    assert check.hint == "'edit-cron' and add e.g.: */5 * * * * /usr/bin/ovios-shell retadm inc data/other"


#: what leftovers.parse_receives finds on the partner (its own tests: test_leftovers.py)
RECEIVES = [Receive(812, 7300, ("192.168.0.149", 40630, "192.168.0.111", 22), "zfs receive repl/smbvol"),
            Receive(900, 12, None, "/usr/sbin/zfs recv -u repl/smbvol")]


def test_a_receive_older_than_an_hour_without_its_run_is_hung():
    receives = RECEIVES
    hung = checks.check_receives("receive on dst", record(), receives, run_age=None)
    assert hung.level == WARN and "(pid 812) has been running for 2h01m" in hung.message
    assert hung.hint.startswith("if it is stuck, on dst: kill 812")
    # the running transfer of the task explains it
    assert checks.check_receives("r", record(), receives, run_age=7400).level == OK
    # young receives are not hung; none at all is fine
    young = [Receive(812, 300, None, "zfs receive repl/smbvol"), RECEIVES[1]]
    assert checks.check_receives("r", record(), young, run_age=None).level == OK
    assert checks.check_receives("r", record(), [], run_age=None).message == \
        "no zfs receive into repl/smbvol is running"


def test_last_run():
    alive = Runner.current().to_record()
    dead = {**alive, "start_time": alive["start_time"] + 1}
    running = record(state=RUNNING_INC, runner=alive)
    check = checks.check_run("last run", running, Status(RUNNING_INC, None), lock_holder=os.getpid())
    assert check.level == OK and check.message == f"running_inc (pid {os.getpid()})"
    died = record(state=RUNNING_INC, runner=dead)
    check = checks.check_run("last run", died, Status(ERROR, "the run (pid 5) died before it finished"), None)
    assert (check.level, check.message) == (WARN, "the run (pid 5) died before it finished")
    assert check.hint.startswith("'retadm inc data/smbvol' starts again from what landed")
    failed = record(state=ERROR, error="refused: x")
    assert checks.check_run("last run", failed, Status(ERROR, "refused: x"), None).message == \
        "the last run failed: refused: x"
    held = checks.check_run("last run", record(), Status(IDLE, None), lock_holder=4242)
    assert held.level == WARN and "held by pid 4242" in held.message and "4242" in held.hint
    assert checks.check_run("last run", record(), Status(IDLE, None), None).level == OK
    unfinished = record(initialised=False, state=ERROR, error=None)
    assert checks.check_run("last run", unfinished, Status(IDLE, None), None).level == WARN


def test_common_snapshot():
    check, common = checks.check_common("common snapshot", observed(), record())
    assert check.level == OK and common.name == "retadm_b"
    assert check.message == "@retadm_b (guid 2) on both sides, as recorded"
    # none in common
    check, common = checks.check_common("c", observed(destination=snaps(("other", 9))), record())
    assert check.level == FAIL and common is None
    assert check.hint == "'retadm repair data/smbvol' keeps the old replica aside and sends in full"
    # newer than the record: a run's data landed without its bookkeeping
    both = snaps(("retadm_b", 2), ("retadm_c", 3))
    check, common = checks.check_common("c", observed(source=both, destination=both), record())
    assert check.level == WARN and common.name == "retadm_c" and "newer than the recorded @retadm_b" in check.message
    # the recorded one is gone from the destination: the chain goes on from an older one
    check, _ = checks.check_common("c", observed(source=snaps(("a", 1), ("retadm_b", 2)),
                                                 destination=snaps(("a", 1))), record())
    assert check.level == WARN and "missing on the destination" in check.message
    # a bookmark (OpenZFS) as the common point
    check, common = checks.check_common("c", observed(source=(), destination=snaps(("retadm_b", 2)),
                                                      source_bookmarks=(ObservedBookmark("retadm_b", 2, 1),)), record())
    assert check.level == OK and isinstance(common, ObservedBookmark) and check.message.startswith("#retadm_b")


def test_holds():
    common = ObservedSnapshot("retadm_b", 2, 1)
    assert checks.check_holds("holds", observed(), record(), common).level == OK
    check = checks.check_holds("holds", observed(destination_holds=frozenset()), record(), common)
    assert check.level == WARN and "not held (tag retadm) on the destination" in check.message
    assert "zfs hold retadm repl/smbvol@retadm_b (on dst)" in check.hint
    check = checks.check_holds("holds", observed(source_holds=frozenset(), destination_holds=frozenset()),
                               record(), common)
    assert "on the source and the destination" in check.message


def test_restore_points():
    points = snaps(("retadm_20261201T100000.000Z", 1), ("retadm_20261202T100000.000Z", 3), ("retadm_b", 2))
    kept = checks.check_restore_points("rp", observed(destination=points), record(retention="daily=7").task(),
                                       "retadm_b", "data/smbvol")
    assert (kept.level, kept.message) == (OK, "2 kept (daily=7), the oldest from 2026-12-01 10:00 UTC")
    fresh = checks.check_restore_points("rp", observed(), record(retention="daily=7").task(), "retadm_b", "data/smbvol")
    assert (fresh.level, fresh.message) == (OK, "none yet (daily=7: they accumulate run by run)")
    none = checks.check_restore_points("rp", observed(), record().task(), "retadm_b", "data/smbvol")
    assert none.level == WARN and none.message.startswith("none kept: the replica holds one point in time")
    assert none.hint == "'retadm edit data/smbvol --retention hourly=24,daily=7,weekly=4' keeps some"


def test_read_only():
    assert checks.check_readonly("ro", observed(destination_readonly=True), record()).level == OK
    unknown = checks.check_readonly("ro", observed(destination_readonly=None), record())
    assert unknown.level == OK and unknown.message.startswith("not known while mounted")
    off = checks.check_readonly("ro", observed(destination_readonly=False), record())
    assert off.level == WARN and off.hint.startswith("on dst: zfs set readonly=on repl/smbvol")


def test_mountpoint():
    at_source = checks.check_mountpoint("m", "filesystem", "/srv/share", "received", record())
    assert at_source.level == WARN and "mounted at the source's mountpoint /srv/share, outside its pool" in \
        at_source.message
    assert at_source.hint.endswith("now, on dst: zfs inherit mountpoint repl/smbvol")
    for where in ("default", "inherited from repl", "local"):
        assert checks.check_mountpoint("m", "filesystem", "/repl/smbvol", where, record()).level == OK
    assert checks.check_mountpoint("m", "volume", "-", "-", record()).level == OK


def test_divergence():
    assert checks.check_divergence("d", observed(), record()).level == OK
    diverged = observed(destination=snaps(("retadm_b", 2), ("dstonly", 7)))
    check = checks.check_divergence("d", diverged, record())
    assert check.level == FAIL and check.message == "the destination has diverged after @retadm_b: @dstonly"
    assert "'retadm repair data/smbvol --dry-run'" in check.hint
    written = checks.check_divergence("d", observed(destination_written=True), record())
    assert written.level == FAIL and "was written on dst" in written.message


def test_tracking_snapshots_the_source_lost_are_a_warning_the_next_run_mends():
    lost = observed(source=snaps(("monday", 1)), destination=snaps(("monday", 1), ("retadm_b", 2)),
                    source_holds=frozenset())
    check = checks.check_divergence("d", lost, record())
    assert check.level == WARN
    assert check.message == "the destination still has @retadm_b after @monday: tracking snapshots the source no " \
        "longer has"
    assert check.hint == "the next 'retadm inc data/smbvol' rolls repl/smbvol back to @monday and replicates from there"


def test_resume_token():
    assert checks.check_resume("r", observed(), record(), running=False).level == OK
    waiting = checks.check_resume("r", observed(resume_token="1-ab", resume_token_valid=True), record(), False)
    assert waiting.level == WARN and waiting.hint == "'retadm inc data/smbvol' resumes it where it stopped"
    stale = checks.check_resume("r", observed(resume_token="1-ab", resume_token_valid=False), record(), False)
    assert stale.level == WARN and "discards it" in stale.hint
    assert checks.check_resume("r", observed(resume_token="1-ab"), record(), running=True).level == OK


def test_lock_holder_reads_proc_locks_without_taking_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    path = TaskLock(TaskKey("data/smbvol", "dst", "repl/smbvol")).path
    path.parent.mkdir(parents=True)
    path.touch()
    assert lock_holder(path) is None
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert lock_holder(path) == os.getpid()
    finally:
        os.close(fd)
    assert lock_holder(path) is None
    st = os.stat(path)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    assert lock_holder(path, f"1: FLOCK  ADVISORY  WRITE 77 {dev} 0 EOF\n"
                                    f"1: -> FLOCK  ADVISORY  WRITE 78 {dev} 0 EOF\n") == 77
    assert lock_holder(tmp_path / "nothere") is None


# -- one task, with the partner unreachable ---------------------------------------------------


class FakeHost:
    """Answers ``run`` from a table of argv prefixes; anything else fails the test."""

    def __init__(self, name: str, answers: dict[tuple[str, ...], str] | None = None, error: Exception | None = None):
        self.name = name
        self.answers = answers or {}
        self.error = error

    def argv_for(self, argv):
        return list(argv)

    def run(self, argv, *, input=None, timeout=0, check=True):
        if self.error is not None:
            raise self.error
        for prefix, stdout in self.answers.items():
            if tuple(argv[:len(prefix)]) == prefix:
                return Result(0, stdout, "", tuple(argv))
        raise AssertionError(f"unexpected command {argv!r}")


def fixed_environment(crontab: str = "", option_on: bool = True, running: bool = True,
                      root_login: str | None = "without-password") -> Environment:
    return Environment("src", cron.parse(crontab)[0], option_on, running, root_login)


def test_an_unreachable_partner_fails_once_and_skips_what_needs_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    local = ZfsNode(FakeHost("localhost", {("zfs", "list"): "filesystem\n"}))
    unreachable = FakeHost("dst", error=HostUnreachable("dst", "unreachable: connect to host dst port 22: No route"))
    environment = fixed_environment("*/5 * * * * /usr/bin/ovios-shell retadm inc data/smbvol\n")
    diagnosis = checks.examine(gather(record(), environment, source=local, destination_host=unreachable,
                                      now=lambda: NOW))
    levels = {check.name: check.level for check in diagnosis.checks}
    assert levels == {
        "local zfs": OK, "children": OK, "ssh src→dst": FAIL, "ssh dst→src": SKIP, "root login": SKIP,
        "remote zfs on dst": SKIP,
        "destination pool repl": SKIP, "free space on repl": SKIP, "replica repl/smbvol": SKIP,
        "encryption": SKIP, "send flags": OK, "common snapshot": SKIP, "holds": SKIP, "restore points": SKIP,
        "read-only": SKIP,
        "mountpoint": SKIP,
        "divergence": SKIP,
        "resume token": SKIP,
        "last run": OK, "receive on dst": SKIP, "cron line": OK, "cron service": OK, "config capture": OK, "lag": OK,
    }
    ssh = next(c for c in diagnosis.checks if c.name == "ssh src→dst")
    assert ssh.message == "dst: unreachable: connect to host dst port 22: No route"
    assert ssh.hint == "is dst up, and its sshd running? ('ssh root@dst' says more)"
    skipped = next(c for c in diagnosis.checks if c.name == "holds")
    assert skipped.message == "not checked: dst cannot be reached over ssh"
    assert diagnosis.failed
    assert doctor.summary([diagnosis]) == "1 task: 8 OK, 0 WARN, 1 FAIL, 15 SKIP"
    data = json.loads(doctor.to_json([diagnosis]))
    assert data[0]["failed"] is True and data[0]["checks"][2] == {
        "name": "ssh src→dst", "level": FAIL, "message": ssh.message, "hint": ssh.hint}


def test_ssh_back_shows_the_preflight_error_s_message_and_hint_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    unreachable = FakeHost("dst", error=HostUnreachable("dst", "unreachable"))
    local = ZfsNode(FakeHost("localhost", {("zfs", "list"): "filesystem\n"}))
    facts = gather(record(), fixed_environment(), source=local, destination_host=unreachable, now=lambda: NOW)
    refused = PreflightError("passwordless SSH from dst back to 10.0.0.1 does not work (denied)",
                             "on dst run: ssh-copy-id root@10.0.0.1")
    assert str(refused) == ("passwordless SSH from dst back to 10.0.0.1 does not work (denied); "
                            "on dst run: ssh-copy-id root@10.0.0.1")
    back = {c.name: c for c in checks.examine(replace(facts, ssh="dst", reverse_address=Missing("", refused))).checks}
    assert (back["ssh dst→src"].level, back["ssh dst→src"].message, back["ssh dst→src"].hint) == (
        FAIL, refused.message, refused.hint)
    silent = PreflightError("dst does not say which address it sees this node at")
    back = {c.name: c for c in checks.examine(replace(facts, ssh="dst", reverse_address=Missing("", silent))).checks}
    assert (back["ssh dst→src"].message, back["ssh dst→src"].hint) == (
        str(silent), "set up the key in that direction (the guide's Step 1)")



@pytest.mark.parametrize("here, there, level, message, hint", [
    ("without-password", "prohibit-password", OK, "keys only", None),
    ("no", "without-password", OK, "keys only", None),
    ("yes", "without-password", WARN, "root may still log in with a password (here) although keys work both ways",
     "'options ssh.allow.root keys' on here"),
    ("yes", "yes", WARN, "root may still log in with a password (here and dst) although keys work both ways",
     "'options ssh.allow.root keys' on here and dst"),
])
def test_a_root_password_left_open_once_keys_work(tmp_path, monkeypatch, here, there, level, message, hint):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    local = ZfsNode(FakeHost("localhost", {("zfs", "list"): "filesystem\n"}))
    unreachable = FakeHost("dst", error=HostUnreachable("dst", "unreachable"))
    facts = gather(record(), fixed_environment(root_login=here), source=local, destination_host=unreachable,
                   now=lambda: NOW)
    both_ways = replace(facts, ssh="dst", reverse_address="10.0.0.1", destination_root_login=there)
    check = {c.name: c for c in checks.examine(both_ways).checks}["root login"]
    assert (check.level, check.message, check.hint) == (level, message, hint)
    # while a direction is missing, a password may still be needed: not checked
    one_way = {c.name: c for c in checks.examine(replace(both_ways, reverse_address=Missing("no way back"))).checks}
    assert one_way["root login"].level == SKIP


def test_what_autosync_could_not_carry_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    local = ZfsNode(FakeHost("localhost", {("zfs", "list"): "filesystem\n"}))
    unreachable = FakeHost("dst", error=HostUnreachable("dst", "unreachable"))
    facts = gather(record(), fixed_environment(), source=local, destination_host=unreachable, now=lambda: NOW)
    notes = ["LUN 1 of iqn.2026-11.com.ovios:esx is backed by /dev/sdb, not a zvol: not carried"]
    with_notes = replace(facts, environment=replace(facts.environment, autosync=True, not_captured=notes))
    check = {c.name: c for c in checks.examine(with_notes).checks}["config capture"]
    assert (check.level, check.message) == (WARN, f"not carried to the partners: {notes[0]}")
    clean = replace(facts, environment=replace(facts.environment, autosync=True, not_captured=[]))
    check = {c.name: c for c in checks.examine(clean).checks}["config capture"]
    assert (check.level, check.message) == (OK, "everything that serves a dataset is carried")

# -- the command --------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return PyBridge(OviosShell())


def test_doctor_without_tasks_and_of_an_unknown_dataset(run):
    result = run("retadm doctor")
    assert (result.stdout, result.data) == ("(no replication tasks; 'retadm init' sets one up)\n", 0)
    result = run("retadm doctor data/nothere")
    assert result.data == 1 and result.stderr.strip() == "retadm doctor: data/nothere has no replication task"


def test_doctor_exits_1_when_a_check_fails_and_prints_json(run):
    # a partner whose name does not resolve: ssh fails at once
    TaskStore().create(record(destination="nosuchnode.invalid"))
    result = run("retadm doctor data/smbvol")
    assert result.data == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "data/smbvol -> nosuchnode.invalid:repl/smbvol"
    assert any(line.startswith("  FAIL  ssh ") and "nosuchnode.invalid" in line for line in lines)
    assert lines[-1].startswith("1 task: ") and " 0 FAIL" not in lines[-1]
    as_json = run("retadm doctor --json")
    assert as_json.data == 1
    assert json.loads(as_json.stdout)[0]["dataset"] == "data/smbvol"


def test_usage_line_follows_the_guide(run):
    result = run("retadm")
    assert result.stdout.strip() == "usage: retadm [status|init|inc|reset|doctor|repair|watch] [dataset] [--dry-run]"
    for sub in ("doctor", "watch"):
        help_text = run(f"retadm {sub} --help").stdout
        assert f"retadm {sub}" in help_text and "dataset" in help_text


def test_doctor_and_watch_complete_replicated_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    TaskStore().create(record())
    app = OviosShell()
    for sub in ("doctor", "watch"):
        line = f"retadm {sub} "
        assert app.complete("", line, len(line), len(line)).to_strings() == ("data/smbvol",)


def test_the_check_table_is_what_runs_and_what_help_shows():
    names = checks.titles(record(), "src")
    assert len(names) == len(doctor.CHECKS) and names[0] == "local zfs" and names[-1] == "lag"
    assert {"ssh src→dst", "destination pool repl", "replica repl/smbvol"} <= set(names)
    help_text = checks.check_table()
    assert [line.split()[0] for line in help_text.splitlines()] == [spec.title.split()[0] for spec in doctor.CHECKS]
