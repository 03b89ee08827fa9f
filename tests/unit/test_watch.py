"""`retadm watch` without a lab: the progress file a run publishes, rate and time left, the
lines watch prints, and the command's answers when nothing or several things run."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm.commands.watch import _result_line
from ovios_shell_retadm.replication import progress
from ovios_shell_retadm.replication.progress import Progress, ProgressFile, RateMeter
from ovios_shell_retadm.replication.task_lock import Runner, boot_id, start_ticks
from ovios_shell_retadm.replication.task_store import ERROR, IDLE, RUNNING_INC, Status, TaskRecord, TaskStore
from ovios_shell_retadm.shell import OviosShell

MIB = 1024 * 1024


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return tmp_path


def sample(bytes_: int, updated: float, started: float = 100.0, estimate: int | None = None, **more) -> Progress:
    return Progress("data/smbvol", "inc", Runner.current().to_record(), started, updated, bytes_, estimate, **more)


# -- the progress file --------------------------------------------------------------------


def test_progress_file_round_trip_is_atomic_and_removable(root):
    path = progress.progress_path("data/smbvol")
    assert path == root / "run/ovios/progress/data%smbvol.json"
    assert progress.read_progress("data/smbvol") is None
    first = sample(5 * MIB, 103.0, estimate=20 * MIB, send=1, sends=2)
    progress.write_progress(first, "data/smbvol")
    assert progress.read_progress("data/smbvol") == first
    progress.write_progress(sample(6 * MIB, 104.0), "data/smbvol")
    assert progress.read_progress("data/smbvol").bytes == 6 * MIB
    assert [p.name for p in path.parent.iterdir()] == ["data%smbvol.json"]  # no temporary file left
    assert first.writer_alive()
    progress.remove_progress("data/smbvol")
    progress.remove_progress("data/smbvol")  # already gone: fine
    assert progress.read_progress("data/smbvol") is None
    path.write_text("{half a fi")
    assert progress.read_progress("data/smbvol") is None


def test_the_runs_writer_counts_every_send_and_writes_at_most_twice_a_second(root):
    clock = [1000.0]
    writer = ProgressFile("data/smbvol", "full", clock=lambda: clock[0])
    writer.plan_sends(2)
    writer.start_send(estimate=10 * MIB)
    current = progress.read_progress("data/smbvol")
    assert (current.bytes, current.estimate, current.send, current.sends, current.started) == \
        (0, 10 * MIB, 1, 2, 1000.0)
    clock[0] += 1.0
    writer(4 * MIB)
    assert progress.read_progress("data/smbvol").bytes == 4 * MIB
    clock[0] += 0.1
    writer(5 * MIB)  # too soon after the last write
    assert progress.read_progress("data/smbvol").bytes == 4 * MIB
    clock[0] += 0.5
    writer(6 * MIB)
    assert progress.read_progress("data/smbvol").bytes == 6 * MIB
    writer.end_send(10 * MIB)  # the final count is always written
    assert progress.read_progress("data/smbvol").bytes == 10 * MIB
    writer.start_send(estimate=None)  # the second send: bytes go on from the first one's
    clock[0] += 1.0
    writer(MIB)
    current = progress.read_progress("data/smbvol")
    assert (current.bytes, current.estimate, current.send, current.sends) == (11 * MIB, None, 2, 2)
    assert current.started == 1000.0 and current.kind == "full"
    writer.close()
    assert progress.read_progress("data/smbvol") is None


def test_a_file_from_another_run_is_stale():
    mine = sample(1, 101.0)
    assert not progress.stale(mine, Runner.current().to_record())
    assert progress.stale(mine, {**Runner.current().to_record(), "pid": 1})
    assert progress.stale(mine, None)


# -- rate, time left, formatting ----------------------------------------------------------------


def test_rate_is_a_moving_average_over_the_samples():
    meter = RateMeter(window=10)
    first = sample(10 * MIB, 101.0)
    meter.add(first)
    assert meter.rate(first) == pytest.approx(10 * MIB)  # one sample: the average since the start
    meter.add(first)  # the same sample again counts once
    meter.add(sample(30 * MIB, 103.0))
    assert meter.rate(first) == pytest.approx(10 * MIB)
    for t in range(104, 120):
        meter.add(sample(30 * MIB + (t - 103) * 2 * MIB, float(t)))
    assert meter.rate(sample(0, 119.0)) == pytest.approx(2 * MIB)  # old samples fell out of the window
    meter.add(sample(MIB, 121.0))  # a count going down: a new run; start again
    assert meter.rate(sample(MIB, 121.0, started=120.0)) == pytest.approx(MIB)
    assert RateMeter().rate(sample(0, 100.0)) is None


def test_a_count_that_stops_moving_brings_the_rate_down():
    meter = RateMeter(window=10)
    for t, count in ((100.0, 10 * MIB), (101.0, 20 * MIB)):
        meter.add(sample(count, t, started=99.0))
    last = sample(20 * MIB, 101.0, started=99.0)
    assert meter.rate(last, now=101.5) == pytest.approx(10 * MIB)  # pv reports once a second: still fresh
    assert meter.rate(last, now=106.0) == pytest.approx(10 * MIB / 6)  # nothing for 5 s: it stands still


def test_seconds_left():
    assert progress.seconds_left(sample(30 * MIB, 110.0, estimate=100 * MIB), 10 * MIB) == pytest.approx(7.0)
    assert progress.seconds_left(sample(30 * MIB, 110.0), 10 * MIB) is None
    assert progress.seconds_left(sample(30 * MIB, 110.0, estimate=100 * MIB), None) is None
    assert progress.seconds_left(sample(120 * MIB, 110.0, estimate=100 * MIB), MIB) == 0


@pytest.mark.parametrize("count, text", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (150 * MIB, "150.0 MiB"),
    (3 * 1024 * MIB, "3.0 GiB"), (2 * 1024 ** 4, "2.0 TiB"),
])
def test_format_bytes(count, text):
    assert progress.format_bytes(count) == text


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (42.4, "42s"), (75, "1m15s"), (3725, "1h02m")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_format_rate():
    assert progress.format_rate(12.5 * MIB) == "12.5 MiB/s"
    assert progress.format_rate(None) == "-- /s"


def test_the_progress_line_with_and_without_an_estimate():
    with_estimate = sample(45 * MIB, 110.0, estimate=118 * MIB)
    assert progress.describe(with_estimate, 12 * MIB) == \
        "data/smbvol inc: 45.0 MiB sent, 12.0 MiB/s, 38% of ~118.0 MiB, about 6s left"
    assert progress.describe(with_estimate, None).endswith("38% of ~118.0 MiB, time left unknown")
    without = sample(45 * MIB, 104.0)
    assert progress.describe(without, 11.25 * MIB) == "data/smbvol inc: 45.0 MiB sent, 11.2 MiB/s, 4s elapsed"
    assert progress.describe(without, 11.25 * MIB, now=106.0).endswith("6s elapsed")
    two = sample(45 * MIB, 104.0, send=2, sends=2)
    assert progress.describe(two, MIB).endswith(", send 2/2")
    assert progress.describe(sample(0, 100.0), None) == "data/smbvol inc: transfer starting"


def test_the_result_line():
    record = TaskRecord("data/smbvol", "dst", "repl/smbvol", False, state=IDLE, initialised=True,
                        last_success=time.mktime((2026, 11, 26, 5, 52, 16, 0, 0, -1)),
                        last_snapshot="retadm_x", last_bytes=150 * MIB, last_seconds=3.04)
    assert _result_line(record, Status(IDLE, None)) == (
        "data/smbvol: idle — replicated to dst:repl/smbvol at @retadm_x on 2026-11-26 05:52:16 (150.0 MiB in 3.0s)")
    assert _result_line(record, Status(ERROR, "refused: x")) == "data/smbvol: error — refused: x"
    fresh = TaskRecord("data/smbvol", "dst", "repl/smbvol", False, state=ERROR)
    assert _result_line(fresh, Status(IDLE, None)) == "data/smbvol: idle — no successful run yet"


# -- the command ----------------------------------------------------------------------------------


@pytest.fixture
def run(root):
    return PyBridge(OviosShell())


@pytest.fixture
def live_runner():
    """The identity of a process that is alive (a sleep), as a run's record has it."""
    proc = subprocess.Popen(["sleep", "60"])
    yield Runner(proc.pid, start_ticks(proc.pid), boot_id()).to_record()
    proc.kill()
    proc.wait()


def _task(dataset: str, **more) -> TaskRecord:
    record = TaskRecord(dataset, "dst", f"repl/{dataset.rsplit('/', 1)[-1]}", False, initialised=True, **more)
    TaskStore().create(record)
    return record


def test_watch_with_nothing_running_shows_the_last_results(run):
    assert run("retadm watch").stdout == "no transfer is running (there are no replication tasks)\n"
    _task("data/smbvol", state=IDLE, last_success=time.time(), last_snapshot="retadm_x", last_bytes=10)
    _task("esx/lun01", state=ERROR, error="refused: the destination has diverged")
    result = run("retadm watch")
    assert result.data == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "no transfer is running; the last result:"
    assert lines[1].startswith("  data/smbvol: idle — replicated to dst:repl/smbvol at @retadm_x")
    assert lines[2] == "  esx/lun01: error — refused: the destination has diverged"
    one = run("retadm watch esx/lun01")
    assert one.stdout.splitlines()[0] == "no transfer is running for esx/lun01; the last result:"
    assert run("retadm watch data/nothere").data == 1


def test_watch_without_a_dataset_asks_which_when_several_run(run, live_runner):
    _task("data/smbvol", state=RUNNING_INC, runner=live_runner)
    _task("esx/lun01", state=RUNNING_INC, runner=live_runner)
    result = run("retadm watch")
    assert result.data == 2
    assert result.stderr.strip() == \
        "retadm watch: 2 transfers are running (data/smbvol, esx/lun01); name one: retadm watch DATASET"


def test_watch_follows_the_progress_file_until_the_run_ends(run, live_runner):
    record = _task("data/smbvol", state=RUNNING_INC, runner=live_runner)
    tasks = TaskStore()

    def the_run():
        started = time.time()
        for count in (0, 10 * MIB, 20 * MIB, 30 * MIB):
            progress.write_progress(Progress(record.dataset, "inc", live_runner, started, time.time(), count),
                                    record.key.file_name)
            time.sleep(0.8)
        progress.remove_progress(record.key.file_name)
        tasks.update(record.key, state=IDLE, runner=None, last_success=time.time(),
                     last_snapshot="retadm_y", last_bytes=30 * MIB, last_seconds=3.2)

    writer = threading.Thread(target=the_run)
    writer.start()
    result = run("retadm watch data/smbvol")
    writer.join()
    assert result.data == 0, result.stderr
    lines = result.stdout.splitlines()
    progress_lines = [line for line in lines if " MiB sent, " in line]
    assert progress_lines and all(line.startswith("data/smbvol inc: ") for line in progress_lines)
    assert len(lines) <= 6  # plain lines: one per ~2 s, not one per look
    assert lines[-1].startswith("data/smbvol: idle — replicated to dst:repl/smbvol at @retadm_y")
    assert lines[-1].endswith("(30.0 MiB in 3.2s)")


def test_watch_reports_a_run_that_ends_in_error_with_status_1(run, live_runner):
    record = _task("data/smbvol", state=RUNNING_INC, runner=live_runner)
    threading.Timer(0.7, lambda: TaskStore().update(record.key, state=ERROR, runner=None,
                                                    error="refused: boom")).start()
    result = run("retadm watch")
    assert result.data == 1
    assert result.stdout.splitlines()[-1] == "data/smbvol: error — refused: boom"
