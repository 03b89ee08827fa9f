"""One task's failure is that task's line, never the others' loss, and never hides its cause.

The runs and ZFS are replaced by stand-ins that fail on cue (a store error, an unexpected
exception, a ``zfs set`` that fails while undoing): these are failures a test cannot make
real ZFS produce at will.  The shell, its parsing, its error lines and statuses are real.
"""

from __future__ import annotations

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm.commands import failover as failover_commands
from ovios_shell_retadm.replication import failover, partner, task_run
from ovios_shell_retadm.replication.executor import Outcome
from ovios_shell_retadm.replication.task_store import IDLE, TaskRecord, TaskStore
from ovios_shell_retadm.shell import OviosShell
from ovios_shell_retadm.store import StoreError
from ovios_shell_retadm.zfs import ZfsError, ZfsNode


@pytest.fixture
def shell(tmp_path, monkeypatch) -> PyBridge:
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return PyBridge(OviosShell())


def task(dataset: str) -> TaskRecord:
    return TaskRecord(dataset=dataset, destination="dst", remote_dataset=f"repl/{dataset.split('/')[1]}",
                      properties=False, state=IDLE, initialised=True)


def test_inc_of_every_task_goes_on_after_one_task_fails_unexpectedly(shell, monkeypatch):
    for dataset in ("data/a", "data/b", "data/c"):
        assert TaskStore().create(task(dataset))
    ran = []

    def run(self: task_run.TaskRun) -> Outcome:
        ran.append(self.record.dataset)
        if self.record.dataset == "data/a":
            raise StoreError("cannot open /etc/ovios/ovios.db: database is locked")
        if self.record.dataset == "data/b":
            raise RuntimeError("something nobody expected")
        return Outcome(common="retadm_1", common_guid=1)

    monkeypatch.setattr(task_run.TaskRun, "run", run)
    result = shell("retadm inc")
    assert ran == ["data/a", "data/b", "data/c"]
    assert result.stderr.splitlines() == [
        "retadm inc data/a: cannot open /etc/ovios/ovios.db: database is locked",
        "retadm inc data/b: internal error: RuntimeError: something nobody expected",
    ]
    assert result.data == 1


class FailingUndo(ZfsNode):
    """``readonly=on`` works; undoing it (``readonly=off``) fails."""

    def set_property(self, name: str, prop: str, value: str) -> None:
        if (prop, value) == ("readonly", "off"):
            raise ZfsError("cannot set property for 'repl/smbvol': pool I/O is currently suspended")


def test_switchback_that_cannot_undo_readonly_says_both_what_failed_and_what_stays(shell, monkeypatch):
    assert TaskStore().create(task("repl/smbvol"))
    replica = failover.Replica("repl/smbvol", "filesystem", "192.168.0.149:data/smbvol", "2026-12-01T10:00:00Z",
                               readonly=False, resume_token=False)
    monkeypatch.setattr(failover_commands, "ZfsNode", FailingUndo)
    monkeypatch.setattr(failover, "read_replica", lambda node, dataset: replica)

    def run(self: task_run.TaskRun) -> Outcome:
        raise task_run.RunFailed("dst: unreachable: connect to host dst port 22: No route to host")

    monkeypatch.setattr(task_run.TaskRun, "run", run)
    result = shell("retadm switchback repl/smbvol --yes")
    assert result.stderr.splitlines() == [
        "retadm switchback: dst: unreachable: connect to host dst port 22: No route to host; nothing was switched, "
        "but repl/smbvol stays read-only: cannot set property for 'repl/smbvol': pool I/O is currently suspended "
        "(zfs set readonly=off repl/smbvol makes it writable)"]
    assert result.data == 1


# -- fan-out: one dataset, several tasks --------------------------------------------------------------


def fanned_out(*remotes: str) -> list[TaskRecord]:
    records = [TaskRecord(dataset="data/smbvol", destination="dst", remote_dataset=remote, properties=False,
                          state=IDLE, initialised=True) for remote in remotes]
    for record in records:
        assert TaskStore().create(record)
    return records


def test_inc_of_a_fanned_out_dataset_runs_each_task_and_one_failure_is_its_own_line(shell, monkeypatch):
    fanned_out("repl/a", "repl/b", "repl/c")
    ran = []

    def run(self: task_run.TaskRun) -> Outcome:
        ran.append(self.record.remote_dataset)
        if self.record.remote_dataset == "repl/b":
            raise task_run.RunFailed("refused: the destination diverged")
        return Outcome(common="retadm_1", common_guid=1)

    monkeypatch.setattr(task_run.TaskRun, "run", run)
    result = shell("retadm inc data/smbvol")
    assert ran == ["repl/a", "repl/b", "repl/c"]
    assert result.stderr.splitlines() == ["retadm inc data/smbvol -> dst:repl/b: refused: the destination diverged"]
    assert result.data == 1
    ran.clear()
    assert shell("retadm inc data/smbvol --dest repl/c").data == 0  # --dest: only that one
    assert ran == ["repl/c"]


@pytest.mark.parametrize("command", ["reset data/smbvol --yes", "repair data/smbvol --yes", "watch data/smbvol",
                                     "doctor data/smbvol", "inc data/smbvol --dest dst"])
def test_a_command_on_one_task_of_a_fanned_out_dataset_needs_dest(shell, command):
    fanned_out("repl/smbvol", "repl/fanout")
    result = shell(f"retadm {command}")
    verb = command.split()[0]
    assert result.data == 2
    choose = "HOST:REMOTE_DATASET" if "--dest dst" in command else "HOST or --dest HOST:REMOTE_DATASET"
    assert result.stderr == (f"retadm {verb}: data/smbvol has 2 replication tasks "
                             f"{'to dst ' if '--dest dst' in command else ''}(dst:repl/fanout, dst:repl/smbvol); "
                             f"choose one with --dest {choose}\n")
    assert len(TaskStore().of("data/smbvol")) == 2  # nothing was removed


def test_dest_that_names_no_task_is_one_line(shell):
    fanned_out("repl/smbvol", "repl/fanout")
    result = shell("retadm reset data/smbvol --dest elsewhere --yes")
    assert (result.data, result.stderr) == (2, "retadm reset: data/smbvol has no replication task to elsewhere "
                                               "(its tasks: dst:repl/fanout, dst:repl/smbvol)\n")


def test_the_partner_marks_broken_only_the_task_whose_replica_was_promoted(shell, capsys):
    fanned_out("repl/smbvol", "repl/fanout")
    assert partner.main(["broken", "data/smbvol", "promoted on dst", "repl/fanout"]) == 0
    assert capsys.readouterr().out == "data/smbvol: task to dst:repl/fanout marked broken\n"
    states = {r.remote_dataset: (r.state, r.error) for r in TaskStore().of("data/smbvol")}
    assert states == {"repl/fanout": ("broken", "promoted on dst"), "repl/smbvol": (IDLE, None)}
    # a caller that does not say which replica: with several tasks, one line and nothing marked
    assert partner.main(["broken", "data/smbvol", "promoted"]) == 1
    assert capsys.readouterr().err.startswith("data/smbvol has 2 replication tasks here")
    assert [r.state for r in TaskStore().of("data/smbvol")] == ["broken", IDLE]
