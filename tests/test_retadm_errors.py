"""One task's failure is that task's line, never the others' loss, and never hides its cause.

The runs and ZFS are replaced by stand-ins that fail on cue (a store error, an unexpected
exception, a ``zfs set`` that fails while undoing): these are failures a test cannot make
real ZFS produce at will.  The shell, its parsing, its error lines and statuses are real.
"""

from __future__ import annotations

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm.commands import failover as failover_commands
from ovios_shell_retadm.replication import failover, jobs
from ovios_shell_retadm.replication.executor import Outcome
from ovios_shell_retadm.replication.tasks import IDLE, TaskRecord, TaskStore
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

    def run(self: jobs.TaskRun) -> Outcome:
        ran.append(self.record.dataset)
        if self.record.dataset == "data/a":
            raise StoreError("cannot open /etc/ovios/ovios.db: database is locked")
        if self.record.dataset == "data/b":
            raise RuntimeError("something nobody expected")
        return Outcome(common="retadm_1", common_guid=1)

    monkeypatch.setattr(jobs.TaskRun, "run", run)
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

    def run(self: jobs.TaskRun) -> Outcome:
        raise jobs.RunFailed("dst: unreachable: connect to host dst port 22: No route to host")

    monkeypatch.setattr(jobs.TaskRun, "run", run)
    result = shell("retadm switchback repl/smbvol --yes")
    assert result.stderr.splitlines() == [
        "retadm switchback: dst: unreachable: connect to host dst port 22: No route to host; nothing was switched, "
        "but repl/smbvol stays read-only: cannot set property for 'repl/smbvol': pool I/O is currently suspended "
        "(zfs set readonly=off repl/smbvol makes it writable)"]
    assert result.data == 1
