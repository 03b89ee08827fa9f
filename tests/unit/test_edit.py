"""``retadm edit``: a task's settings changed after init (the store only: no ZFS, no partner)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ovios_shell_retadm.replication.task_store import IDLE, TaskRecord, TaskStore


@pytest.fixture
def node(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    for remote in ("repl/a", "repl/b"):
        assert TaskStore().create(TaskRecord(dataset="data/fan", destination="dst", remote_dataset=remote,
                                             properties=False, state=IDLE, initialised=True))
    assert TaskStore().create(TaskRecord(dataset="data/x", destination="dst", remote_dataset="repl/x",
                                         properties=False, state=IDLE, initialised=True, bandwidth=1048576))
    assert TaskStore().create(TaskRecord(dataset="data/relay", destination="far", remote_dataset="repl/relay",
                                         properties=False, state=IDLE, initialised=True, cascade=True))
    return {**os.environ, "OVIOS_ROOT": str(tmp_path)}


def shell(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ovios_shell_retadm.shell", "retadm", "edit", *argv], env=env,
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def record(dataset: str, dest: str | None = None) -> TaskRecord:
    return TaskStore().choose(dataset, dest)


def test_edit_changes_the_bandwidth_and_properties(node):
    done = shell(node, "data/x", "--bandwidth", "10M", "--properties", "yes")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "data/x -> dst:repl/x: bandwidth 1.0 MiB/s -> 10.0 MiB/s, properties no -> yes\n"
    assert (record("data/x").bandwidth, record("data/x").properties) == (10 * 2**20, True)
    lifted = shell(node, "data/x", "--bandwidth", "none")
    assert lifted.stdout == "data/x -> dst:repl/x: bandwidth 10.0 MiB/s -> none\n"
    assert record("data/x").bandwidth is None


def test_a_dry_run_changes_nothing(node):
    dry = shell(node, "data/x", "--bandwidth", "512K", "--dry-run")
    assert (dry.returncode, dry.stdout) == (0, "dry run: data/x -> dst:repl/x: would change bandwidth "
                                               "1.0 MiB/s -> 512.0 KiB/s\n")
    assert record("data/x").bandwidth == 1048576


def test_the_restore_points_a_replica_keeps(node):
    assert record("data/x").retention is None  # set up before policies: only the newest snapshot
    done = shell(node, "data/x", "--retention", "daily=7, hourly=24")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "data/x -> dst:repl/x: retention none -> hourly=24,daily=7\n"
    assert record("data/x").task().retention.hourly == 24
    back = shell(node, "data/x", "--retention", "none")
    assert back.stdout == "data/x -> dst:repl/x: retention hourly=24,daily=7 -> none\n"
    assert not record("data/x").task().retention.keeps_any


def test_one_task_of_several_with_dest(node):
    assert shell(node, "data/fan", "--dest", "repl/b", "--bandwidth", "2M").returncode == 0
    assert (record("data/fan", "repl/a").bandwidth, record("data/fan", "repl/b").bandwidth) == (None, 2 * 2**20)


@pytest.mark.parametrize("argv, status, line", [
    (["data/x"], 2, "retadm edit: nothing to change: give --address, --bandwidth, --properties or --retention"),
    (["data/x", "--bandwidth", "fast"], 2, None),  # argparse's usage error, naming the value
    (["data/x", "--retention", "hourly=many"], 2, None),
    (["data/x", "--address", "bad host"], 2, "retadm edit: invalid host 'bad host': use an IP address or a host "
                                           "name (letters, digits, '-' and '.', not starting with '-')"),
    (["data/x", "--retention", "yearly=2"], 2, None),
    (["data/relay", "--retention", "daily=7"], 2,
     "retadm edit: data/relay is a replica that a cascade sends on: its destination keeps the restore points "
     "its source keeps (change them on the source's task)"),
    (["data/none", "--bandwidth", "1M"], 1, "retadm edit: data/none has no replication task"),
    (["data/fan", "--bandwidth", "1M"], 2, None),  # several tasks: --dest needed
    ([], 2, "retadm edit: the dataset is required when there is no terminal"),
])
def test_refusals_change_nothing(node, argv, status, line):
    before = [r.to_dict() for r in TaskStore().all()]
    refused = shell(node, *argv)
    assert refused.returncode == status, refused.stderr
    assert refused.stdout == "" and "Traceback" not in refused.stderr
    if line is not None:
        assert refused.stderr.strip() == line
    assert [r.to_dict() for r in TaskStore().all()] == before
