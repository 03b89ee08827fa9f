"""A run carries out what its task record and its confirmed plan say, as they are under the lock.

No ZFS here: the nodes refuse every command, so a run that went past its checks fails loudly.
The real-ZFS side (the executor reading the destination again before a rollback) is in
test_zfs.py; the confirmation through the shell, on the lab, in tests/fuse_lab/test_repair.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ovios_shell_retadm.exit_status import BUSY
from ovios_shell_retadm.hosts import Host
from ovios_shell_retadm.replication.model import (
    CreateSnapshot,
    Hold,
    Plan,
    RenameDestination,
    Rollback,
    SendIncremental,
    Side,
)
from ovios_shell_retadm.replication.task_lock import TaskLock
from ovios_shell_retadm.replication.task_run import INC, REPAIR, RunFailed, TaskRun, reread_under_lock
from ovios_shell_retadm.replication.task_store import IDLE, TaskRecord, TaskStore
from ovios_shell_retadm.zfs import ZfsNode


class NoCommands(Host):
    """A host on which nothing may run."""

    name = "nowhere"

    def argv_for(self, argv: Sequence[str]) -> list[str]:
        raise AssertionError(f"no command should have run: {list(argv)}")


@pytest.fixture
def tasks(tmp_path, monkeypatch) -> TaskStore:
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return TaskStore()


def record(**changes) -> TaskRecord:
    fields = {"dataset": "data/smbvol", "destination": "dst", "remote_dataset": "repl/smbvol", "properties": False,
                  "state": IDLE, "initialised": True, "created": 1000.0}
    return TaskRecord(**{**fields, **changes})


def run_of(rec: TaskRecord, tasks: TaskStore, kind: str = INC, confirmed: Plan | None = None) -> TaskRun:
    return TaskRun(rec, kind, tasks, source=ZfsNode(NoCommands()), destination=ZfsNode(NoCommands()),
                   confirmed=confirmed)


# -- the record, read again under the lock ------------------------------------------------------


def test_the_record_read_again_under_the_lock_is_the_current_one(tasks):
    assert tasks.create(record())
    tasks.update(record().key, state="error", error="earlier")
    current = reread_under_lock(record(), tasks)
    assert (current.state, current.error) == ("error", "earlier")


def test_a_run_of_a_task_reset_meanwhile_does_nothing(tasks):
    read_before = record()
    assert tasks.create(read_before)
    tasks.delete(record().key)  # `retadm reset` finished between the read and the lock
    with pytest.raises(RunFailed, match=r"^the task of data/smbvol was removed meanwhile \(retadm reset\); "
                                        r"nothing was done$"):
        run_of(read_before, tasks).run()
    assert tasks.get(read_before.key) is None  # the run did not bring the record back


@pytest.mark.parametrize("change", [{"properties": True}, {"created": 2000.0}, {"identity": "bbbbbbbb"}])
def test_a_run_of_a_task_changed_meanwhile_does_nothing(tasks, change):
    read_before = record()
    assert tasks.create(record(**change))  # reset and set up again meanwhile
    with pytest.raises(RunFailed, match=r"^the task of data/smbvol was changed meanwhile .*nothing was done"):
        run_of(read_before, tasks).run()
    assert tasks.get(read_before.key) == record(**change)


@pytest.mark.parametrize("change", [{"destination": "other"}, {"remote_dataset": "repl/elsewhere"}])
def test_the_record_read_again_is_the_same_task_s_not_another_destination_s(tasks, change):
    """Fan-out: the dataset's task to another destination is another task; a run of the one
    reset meanwhile does nothing, and leaves the other's record as it was."""
    read_before = record()
    assert tasks.create(record(**change))  # the dataset's other task; read_before's was reset
    with pytest.raises(RunFailed, match=r"^the task of data/smbvol was removed meanwhile"):
        run_of(read_before, tasks).run()
    assert tasks.of("data/smbvol") == [record(**change)]


def test_two_tasks_of_one_dataset_have_locks_of_their_own(tasks):
    """A run of one task holds its lock; the other task of the dataset takes its own meanwhile,
    and a second run of the first is refused as busy."""
    one, other = record(), record(remote_dataset="repl/fanout")
    assert tasks.create(one) and tasks.create(other)
    with TaskLock(one.key):
        with TaskLock(other.key):
            pass
        with pytest.raises(RunFailed) as busy:
            run_of(one, tasks).run()
        assert busy.value.status == BUSY
    assert TaskLock(one.key).path != TaskLock(other.key).path


# -- carrying out only the destructive steps that were confirmed ---------------------------------

ROLLBACK = Rollback("retadm_1", ("dstonly",))
NORMAL = (CreateSnapshot("retadm_2"), SendIncremental("retadm_1", False, "retadm_2", False),
          Hold(Side.DESTINATION, "retadm_2"))


def test_plan_destructive_lists_rollbacks_and_renames_only():
    plan = Plan((Hold(Side.SOURCE, "a"), ROLLBACK, RenameDestination("repl/x-old"), *NORMAL), None, "a")
    assert plan.destructive == (ROLLBACK, RenameDestination("repl/x-old"))
    assert Plan(NORMAL, None, "retadm_2").destructive == ()


def test_the_confirmed_rollback_is_carried_out(tasks):
    run = run_of(record(), tasks, REPAIR, confirmed=Plan((ROLLBACK,), None, "retadm_1"))
    assert run._as_confirmed(Plan((ROLLBACK,), None, "retadm_1")).steps == (ROLLBACK,)
    # once spent, the same rollback again is not confirmed
    with pytest.raises(RunFailed, match="confirmed plan had nothing destructive"):
        run._as_confirmed(Plan((ROLLBACK,), None, "retadm_1"))


def test_a_rollback_that_now_destroys_more_is_refused_naming_both(tasks):
    run = run_of(record(), tasks, REPAIR, confirmed=Plan((ROLLBACK,), None, "retadm_1"))
    more = Rollback("retadm_1", ("dstonly", "later"))
    with pytest.raises(RunFailed) as refused:
        run._as_confirmed(Plan((more,), None, "retadm_1"))
    message = str(refused.value)
    assert message.startswith("refused: the destination changed since the plan was confirmed: it now needs "
                              "'roll the destination back to @retadm_1: discards its changes since then and "
                              "destroys @dstonly, @later', the confirmed plan had roll the destination back to "
                              "@retadm_1: discards its changes since then and destroys @dstonly;")
    assert message.endswith("nothing more was changed: run the command again to see the new plan")


def test_a_rollback_where_none_was_shown_is_refused(tasks):
    """The preview needed no rollback (nothing was asked); the run must not roll back."""
    run = run_of(record(), tasks, REPAIR, confirmed=Plan(NORMAL, None, "retadm_2"))
    with pytest.raises(RunFailed, match=r"it now needs 'roll the destination back to @retadm_1.*"
                                        r"the confirmed plan had nothing destructive"):
        run._as_confirmed(Plan((ROLLBACK,), None, "retadm_1"))
    assert run._as_confirmed(Plan(NORMAL, None, "retadm_2")).steps == NORMAL  # the rest goes on


def test_keeping_the_replica_aside_uses_the_name_that_was_confirmed(tasks):
    shown = RenameDestination("repl/smbvol-old-20261202T100000")
    run = run_of(record(), tasks, REPAIR, confirmed=Plan((shown,), None, ""))
    now = run._as_confirmed(Plan((RenameDestination("repl/smbvol-old-20261202T100105"),), None, ""))
    assert now.steps == (shown,)

